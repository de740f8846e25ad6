"""Realtime TTS streams on the real Piper engine: backpressure, order and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from openfish.config import RealtimeSettings, Settings
from openfish.engines.registry import EngineRegistry
from openfish.errors import OpenfishError
from openfish.services.accounts.sessions import CreditMeter
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.live import LiveSpeech
from openfish.services.tts.planner import SpeechPlanner, SynthesisPlan, TtsRequest
from tests.conftest import Harness


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(workers=2, name="test-live-tts")
    workers.start()
    yield workers
    workers.stop()


def plan(engines: EngineRegistry) -> SynthesisPlan:
    return SpeechPlanner(engines, Settings()).plan_stream(TtsRequest(text="", format="pcm"))


class StalledClient:
    """A client that stops reading: every send waits until ``reading`` is set."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.sent: list[bytes] = []

    async def send(self, audio: bytes) -> None:
        await self.reading.wait()
        self.sent.append(audio)


async def test_a_client_that_stops_reading_stops_the_text_coming_in(
    harness: Harness, engines: EngineRegistry, pool: WorkerPool
) -> None:
    caller = await harness.new_caller(credits=10_000)
    meter = CreditMeter(harness.services.billing, caller.account_id, "tts_realtime", block=500, prefix="t")
    client = StalledClient()
    failures: list[OpenfishError] = []

    async def failed(error: OpenfishError) -> None:
        failures.append(error)

    speech = LiveSpeech(
        plan(engines),
        pool,
        meter,
        RealtimeSettings(max_buffered_chars=200),
        credits_per_character=1,
        send=client.send,
        on_failure=failed,
    )
    sentence = "This sentence waits for a listener who is not reading. "
    for _ in range(3):
        await speech.add(sentence)  # 165 characters: still within the buffer
    blocked = asyncio.ensure_future(speech.add(sentence))
    await asyncio.sleep(1.0)
    assert not blocked.done()  # the 4th would exceed 200 waiting characters: reading has paused
    assert client.sent == []
    assert meter.used == 0  # nothing is charged until it was sent
    client.reading.set()
    await asyncio.wait_for(blocked, 30)
    assert await speech.finish()
    assert failures == []
    assert meter.units == 4 * len(sentence.strip())
    assert sum(len(audio) for audio in client.sent) / 2 / 22050 > 8  # four sentences of speech
    await meter.settle()
    assert await harness.balance(caller.account_id) == 10_000 - meter.units


async def test_a_too_long_fragment_is_refused_without_changing_the_stream(
    harness: Harness, engines: EngineRegistry, pool: WorkerPool
) -> None:
    caller = await harness.new_caller()
    meter = CreditMeter(harness.services.billing, caller.account_id, "tts_realtime", block=50, prefix="t")
    client = StalledClient()
    client.reading.set()

    async def failed(error: OpenfishError) -> None:
        raise AssertionError(error)

    speech = LiveSpeech(
        plan(engines),
        pool,
        meter,
        RealtimeSettings(max_buffered_chars=100, max_session_chars=150),
        credits_per_character=1,
        send=client.send,
        on_failure=failed,
    )
    with pytest.raises(OpenfishError, match="at most 100 characters at a time"):
        await speech.add("x" * 101)
    await speech.add("Short and sweet. " * 5)  # 85
    with pytest.raises(OpenfishError, match="at most 150 characters per stream"):
        await speech.add("y" * 70)
    assert await speech.finish()
    assert meter.units == 5 * len("Short and sweet.")  # each sentence is one piece

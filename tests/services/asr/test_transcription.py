"""Streamed transcription on the real Whisper model: segments reach the event loop while the decode
is still going on, and the hold is captured only for a whole transcript — a stream that fails or
is closed early charges nothing and stops its decode."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from openfish.audio.decode import decode_audio
from openfish.engines.base import Audio, DecodeOptions, EngineError, Segment, Transcript
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable, InvalidRequest
from openfish.services.accounts.billing import HOLD_CAPTURED
from openfish.services.asr.transcription import TranscriptionStream
from tests.audio_checks import word_error_rate
from tests.conftest import Harness
from tests.services.asr.gated import LONG_SENTENCES, GatedEngine, long_speech

MODEL = "whisper-tiny-en"


class BreaksAfterFirst(GatedEngine):
    """The real engine, whose decode fails once its first segment was handed on."""

    def transcribe(
        self,
        audio: Audio,
        sample_rate: int,
        *,
        language: str | None,
        words: bool,
        options: DecodeOptions | None = None,
        on_segment: Callable[[Segment], None] | None = None,
    ) -> Transcript:
        def relay(segment: Segment) -> None:
            if on_segment is not None:
                on_segment(segment)
            raise EngineError("the decoder broke")

        return super().transcribe(
            audio, sample_rate, language=language, words=words, options=options, on_segment=relay
        )


@pytest.fixture
async def gated(engines: EngineRegistry, harness_factory: Callable[..., Any]) -> tuple[Harness, GatedEngine]:
    """An app whose only transcriber is the real tiny.en model behind a gate."""
    return await _wrapped(GatedEngine, engines, harness_factory)


async def _wrapped(
    wrapper: type[GatedEngine], engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> tuple[Harness, GatedEngine]:
    inner = engines.transcriber(MODEL)
    assert inner is not None
    engine = wrapper(inner)
    only = EngineRegistry()
    only.register_transcriber(engine)
    harness: Harness = await harness_factory(engines=only)
    return harness, engine


async def _start(harness: Harness, account_id: str, reference: str) -> TranscriptionStream:
    return await harness.services.transcription.stream(
        account_id, long_speech(), language=None, words=False, model=MODEL, reference=reference
    )


async def test_segments_reach_the_listener_while_the_decode_goes_on(
    gated: tuple[Harness, GatedEngine],
) -> None:
    harness, engine = gated
    caller = await harness.new_caller()
    billed = math.ceil(decode_audio(long_speech()).duration_seconds)
    stream = await _start(harness, caller.account_id, "asr:streamed")
    assert stream.credits == billed
    items: list[Segment | Transcript] = []
    try:
        async for item in stream.items:
            if not items:
                # The decode is waiting at its first segment: nothing after it has been decoded.
                assert isinstance(item, Segment)
                assert len(engine.handed) == 1
                assert not engine.finished.is_set()
                engine.gate.set()
            items.append(item)
    finally:
        engine.gate.set()
    *segments, transcript = items
    assert isinstance(transcript, Transcript)
    assert segments == transcript.segments == engine.handed
    # The last segments come from a later decoding pass than the first: decoded after it was heard.
    assert transcript.segments[-1].seek > transcript.segments[0].seek
    assert " ".join(s.text for s in transcript.segments) == transcript.text
    assert word_error_rate(" ".join(LONG_SENTENCES), transcript.text) < 0.25, transcript.text
    # Captured before the transcript was handed on: releasing now changes nothing.
    assert (await harness.services.billing.release("asr:streamed")).status == HOLD_CAPTURED
    assert await harness.balance(caller.account_id) == 1000 - billed


async def test_closing_the_stream_stops_the_decode_and_releases_the_hold(
    gated: tuple[Harness, GatedEngine],
) -> None:
    harness, engine = gated
    caller = await harness.new_caller()
    stream = await _start(harness, caller.account_id, "asr:left")
    try:
        first = await anext(stream.items)
        assert isinstance(first, Segment)
        assert await harness.balance(caller.account_id) < 1000  # held while it runs
        await stream.items.aclose()
        assert await harness.balance(caller.account_id) == 1000
    finally:
        engine.gate.set()
    assert await asyncio.to_thread(engine.finished.wait, 30)
    # The decode ended at the next segment instead of running to the end of the audio.
    assert not engine.returned
    assert engine.raised is not None
    assert not isinstance(engine.raised, EngineError)
    assert len(engine.handed) == 2
    assert await harness.balance(caller.account_id) == 1000


async def test_a_decode_that_fails_midway_charges_nothing(
    engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> None:
    harness, engine = await _wrapped(BreaksAfterFirst, engines, harness_factory)
    engine.gate.set()
    caller = await harness.new_caller()
    stream = await _start(harness, caller.account_id, "asr:broken")
    assert isinstance(await anext(stream.items), Segment)
    with pytest.raises(EngineUnavailable, match="the decoder broke"):
        await anext(stream.items)
    assert await harness.balance(caller.account_id) == 1000


async def test_refusals_come_before_anything_is_held(gated: tuple[Harness, GatedEngine]) -> None:
    harness, _engine = gated
    caller = await harness.new_caller()
    service = harness.services.transcription
    with pytest.raises(InvalidRequest, match="cannot translate"):
        await service.stream(
            caller.account_id,
            long_speech(),
            language=None,
            words=False,
            model=MODEL,
            reference="asr:refused",
            options=DecodeOptions(task="translate"),
        )
    assert await harness.balance(caller.account_id) == 1000

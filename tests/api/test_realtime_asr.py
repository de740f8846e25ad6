"""Realtime ASR over a real WebSocket, fed by realtime TTS: the same words come back."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.api.realtime_client import collect, open_socket, parse, send_json, send_msgpack
from tests.api.test_realtime_tts import open_holds
from tests.audio_checks import word_error_rate
from tests.conftest import Caller, Harness

TTS = "/api/open/v1/speech/tts/live"
ASR = "/api/open/v1/speech/transcriptions/live"
Serve = Callable[[Harness], Awaitable[str]]
FIRST = "The quick brown fox jumps over the lazy dog."
SECOND = "Please call me back tomorrow morning."


async def speak(base: str, caller: Caller, text: str) -> bytes:
    """``text`` as 22.05 kHz 16-bit PCM from realtime TTS."""
    async with open_socket(base + TTS, caller) as ws:
        await send_json(ws, "start", format="pcm", text=text)
        await send_json(ws, "stop")
        return bytes((await collect(ws, "finish")).audio)


def silence(seconds: float, rate: int = 22050) -> bytes:
    return bytes(2 * int(rate * seconds))


async def stream_pcm(ws: ClientConnection, pcm: bytes, rate: int, *, pace: float = 0.5) -> None:
    """Send ``pcm`` in 100 ms frames, at ``1/pace`` times real time (like a microphone, faster)."""
    step = 2 * rate // 10
    for offset in range(0, len(pcm), step):
        await ws.send(pcm[offset : offset + step])
        await asyncio.sleep(0.1 * pace)


async def test_text_to_realtime_tts_to_realtime_asr_gives_the_words_back(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    caller = await harness.new_caller(credits=5000, features=("realtime_tts", "realtime_asr"))
    first, second = await speak(base, caller, FIRST), await speak(base, caller, SECOND)
    spent_on_speech = 5000 - await harness.balance(caller.account_id)
    pcm = silence(0.5) + first + silence(1.2) + second + silence(1.0)
    async with open_socket(base + ASR, caller) as ws:
        await send_json(ws, "start", language="en", sample_rate=22050, words=True)
        ready = parse(await ws.recv())
        sender = asyncio.create_task(stream_pcm(ws, pcm, 22050))
        heard = await collect(ws, "final")
        await sender
        await send_json(ws, "stop")
        heard.events += (await collect(ws, "finish")).events
    seconds = len(pcm) / 2 / 22050
    assert ready == {"event": "ready", "sample_rate": 22050, "encoding": "pcm_s16le"}
    finals = heard.named("final")
    assert len(finals) == 2
    assert word_error_rate(FIRST, finals[0]["text"]) < 0.25
    assert word_error_rate(SECOND, finals[1]["text"]) < 0.25
    assert 0.2 < finals[0]["start"] < finals[0]["end"] < finals[1]["start"] < finals[1]["end"] <= seconds
    assert finals[0]["words"][0]["start"] >= finals[0]["start"] - 0.3
    assert heard.named("partial"), "no partial transcript while speaking"
    assert all(p["start"] >= 0 for p in heard.named("partial"))
    finish = heard.last()
    assert finish["reason"] == "stop"
    assert finish["duration"] == pytest.approx(seconds, abs=0.01)
    assert finish["credits_used"] == math.ceil(seconds)
    assert 5000 - await harness.balance(caller.account_id) == spent_on_speech + math.ceil(seconds)
    assert await open_holds(harness) == []


async def test_msgpack_framing_at_16k_and_silence_gives_no_words(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    caller = await harness.new_caller(features=("realtime_asr",))
    async with open_socket(base + ASR, caller) as ws:
        await send_msgpack(ws, "start", sampleRate=16000, model="whisper-tiny-en")
        assert parse(await ws.recv(), "msgpack")["event"] == "ready"
        for _ in range(20):
            await send_msgpack(ws, "audio", audio=silence(0.1, 16000))
        # Low noise is not speech either.
        noise = (np.random.default_rng(1).normal(0, 60, 16000)).astype("<i2").tobytes()
        await send_msgpack(ws, "audio", audio=noise)
        await send_msgpack(ws, "stop")
        got = await collect(ws, "finish", framing="msgpack")
    assert [e["event"] for e in got.events] == ["finish"]
    assert got.last()["duration"] == pytest.approx(3.0)
    assert got.last()["credits_used"] == 3


async def test_refusals_and_malformed_messages(harness_factory: Callable[..., Any], serve: Serve) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    tts_only = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + ASR, tts_only) as ws:
        refused = parse(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert refused["code"] == "forbidden"
    assert ws.close_code == 1008
    caller = await harness.new_caller(features=("realtime_asr",))
    async with open_socket(base + ASR, caller) as ws:
        await ws.send(b"\x00\x01")  # audio before start: a MessagePack frame is expected then
        await send_json(ws, "stop")
        await send_json(ws, "start", sample_rate=12345)
        await send_json(ws, "start", language="xx")
        await send_json(ws, "start", encoding="mulaw")
        await send_json(ws, "listen")
        errors = [parse(await ws.recv()) for _ in range(6)]
        await send_json(ws, "start")
        assert parse(await ws.recv())["event"] == "ready"
        await send_json(ws, "audio", audio="not bytes")
        await ws.send(b"\x01")  # half a sample is kept for the next frame
        await ws.send(b"\x00" * 3201)
        await send_json(ws, "stop")
        got = await collect(ws, "finish")
    codes = [e["code"] for e in errors]
    assert codes == ["invalid_request", "conflict", *["invalid_request"] * 4]
    assert "sample_rate" in errors[2]["message"]
    assert "language" in errors[3]["message"]
    assert got.named("error")[0]["code"] == "invalid_request"
    assert got.last()["duration"] == pytest.approx(1601 / 16000, abs=1e-3)


async def test_credits_running_out_and_abrupt_disconnects_charge_what_was_received(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    poor = await harness.new_caller(credits=2, features=("realtime_asr",))
    async with open_socket(base + ASR, poor) as ws:
        await send_json(ws, "start")
        await ws.recv()
        for _ in range(3):
            await ws.send(silence(1.0, 16000))
        got = await collect(ws, "finish")
    assert got.named("error")[0]["code"] == "insufficient_credits"
    assert got.last()["reason"] == "error"
    assert got.last()["credits_used"] == 2
    assert await harness.balance(poor.account_id) == 0

    caller = await harness.new_caller(features=("realtime_asr",))
    ws = await open_socket(base + ASR, caller)
    await send_json(ws, "start")
    await ws.recv()
    for _ in range(25):
        await ws.send(silence(0.1, 16000))
    await asyncio.sleep(0.3)
    ws.transport.abort()
    # Settled as soon as the server notices the dropped connection: normally within a fraction of
    # a second, but on 2 busy cores the VAD work queued before the drop can take seconds.
    for _ in range(300):
        if not await open_holds(harness):
            break
        await asyncio.sleep(0.05)
    assert await open_holds(harness) == []
    assert 1000 - await harness.balance(caller.account_id) == 3  # 2.5 s received, billed per started second

"""Realtime latency over real WebSockets against ``openfish serve``, with 1 and 4 sessions at once.

Run: ``.venv/bin/python -m bench.realtime``.

TTS: each session sends ``start`` and then text the way a language model produces it (a word every
40 ms); the clock starts when the fragment that completes the first clause has been sent and
stops at the first audio frame. It prints the median and worst first-audio latency.

ASR: each session streams a Piper sentence (22.05 kHz PCM, 100 ms frames at real-time pace,
followed by 1.5 s of silence); the clock starts when the frame holding the last sample of speech
has been sent and stops at that utterance's ``final``. It prints the median and worst latency and
the word error rate, for each model.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import numpy as np
from tests.audio_checks import word_error_rate
from websockets.asyncio.client import ClientConnection, connect

from bench.server import free_port, start_server

T = TypeVar("T")
WORD_INTERVAL = 0.04
FRAME_SECONDS = 0.1
RATE = 22050
ROUNDS = 3
TEXT = "Hello there, my friend. It is good to hear from you again after such a long time."
SENTENCE = "Please send the quarterly report to the finance team before Friday."


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def first_audio(base: str, token: str) -> float:
    """Seconds from the end of the first clause to the first audio frame."""
    async with connect(f"{base}/api/open/v1/speech/tts/live", additional_headers=headers(token)) as ws:
        await ws.send(json.dumps({"event": "start", "format": "pcm"}))
        clause_done = 0.0
        receiver = asyncio.create_task(_first_binary(ws))
        for word in TEXT.split(" "):
            await ws.send(json.dumps({"event": "text", "text": word + " "}))
            if word.endswith(",") and not clause_done:
                clause_done = time.perf_counter()
            await asyncio.sleep(WORD_INTERVAL)
        arrived = await receiver
        await ws.send(json.dumps({"event": "stop"}))
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["event"] == "finish":
                break
    return arrived - clause_done


async def _first_binary(ws: ClientConnection) -> float:
    while not isinstance(await ws.recv(), bytes):
        pass
    return time.perf_counter()


async def speech_pcm(base: str, token: str) -> tuple[bytes, int]:
    """The sentence from realtime TTS, and the index of its last sample above -40 dBFS."""
    async with connect(f"{base}/api/open/v1/speech/tts/live", additional_headers=headers(token)) as ws:
        await ws.send(json.dumps({"event": "start", "format": "pcm", "text": SENTENCE}))
        await ws.send(json.dumps({"event": "stop"}))
        audio = bytearray()
        async for message in ws:
            if isinstance(message, bytes):
                audio += message
            elif json.loads(message)["event"] == "finish":
                break
    samples = np.frombuffer(bytes(audio), "<i2")
    loud = np.flatnonzero(np.abs(samples) > 328)
    return bytes(audio), int(loud[-1])


async def final_latency(base: str, token: str, pcm: bytes, last_speech: int, model: str) -> tuple[float, str]:
    """Seconds from sending the last speech frame to the utterance's ``final``, and its text."""
    async with connect(
        f"{base}/api/open/v1/speech/transcriptions/live", additional_headers=headers(token)
    ) as ws:
        await ws.send(json.dumps({"event": "start", "sample_rate": RATE, "language": "en", "model": model}))
        await ws.recv()
        stream = pcm + bytes(2 * int(1.5 * RATE))
        step = 2 * int(RATE * FRAME_SECONDS)
        speech_sent = 0.0
        finals: asyncio.Task[tuple[float, str]] = asyncio.create_task(_first_final(ws))
        started = time.perf_counter()
        for index, offset in enumerate(range(0, len(stream), step)):
            await ws.send(stream[offset : offset + step])
            if not speech_sent and offset + step > 2 * last_speech:
                speech_sent = time.perf_counter()
            # Real-time pace: frame n leaves at n * 100 ms, however long the sends took.
            await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_SECONDS - time.perf_counter()))
            if finals.done():
                break
        arrived, text = await finals
        await ws.send(json.dumps({"event": "stop"}))
        async for message in ws:
            if isinstance(message, str) and json.loads(message)["event"] == "finish":
                break
    return arrived - speech_sent, text


async def _first_final(ws: ClientConnection) -> tuple[float, str]:
    while True:
        message = await ws.recv()
        if isinstance(message, str) and (event := json.loads(message))["event"] == "final":
            return time.perf_counter(), str(event["text"])


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.0f} ms   worst {max(values) * 1000:6.0f} ms"


async def after(delay: float, work: Awaitable[T]) -> T:
    await asyncio.sleep(delay)
    return await work


#: (label, sessions, seconds between session starts): "in step" is the worst case, every session
#: reaching its clause (or the end of its speech) in the same instant; "staggered" spreads them
#: like independent users.
LOADS = (("1 session", 1, 0.0), ("4 in step", 4, 0.0), ("4 staggered", 4, 0.7))


async def run(base: str, token: str) -> None:
    await first_audio(base, token)  # warm-up
    print("Realtime TTS: first audio after the first clause is complete")
    for label, sessions, gap in LOADS:
        latencies: list[float] = []
        for _ in range(ROUNDS):
            latencies += await asyncio.gather(
                *(after(i * gap * 0.3, first_audio(base, token)) for i in range(sessions))
            )
        print(f"  {label:12} x {ROUNDS} rounds: {summary(latencies)}")
    pcm, last_speech = await speech_pcm(base, token)
    print(f"Realtime ASR: final transcript after speech ends ({len(pcm) / 2 / RATE:.1f} s sentence)")
    for model in ("whisper-tiny-en", "whisper-base"):
        await final_latency(base, token, pcm, last_speech, model)  # warm-up
        for label, sessions, gap in LOADS:
            results: list[tuple[float, str]] = []
            for _ in range(ROUNDS):
                results += await asyncio.gather(
                    *(
                        after(i * gap, final_latency(base, token, pcm, last_speech, model))
                        for i in range(sessions)
                    )
                )
            wer = statistics.mean(word_error_rate(SENTENCE, text) for _, text in results)
            print(f"  {model:16} {label:12}: {summary([r[0] for r in results])}   WER {wer:.1%}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server, token = start_server(Path(tmp) / "data", port, Path(tmp) / "server.log")
        try:
            asyncio.run(run(f"ws://127.0.0.1:{port}", token))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

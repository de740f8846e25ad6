"""TTS latency and throughput: openfish over HTTP against the raw Piper engine, side by side.

Run: ``.venv/bin/python -m bench.tts``. Prints, for short/medium/long texts, (a) time to the first
audio byte over HTTP vs the raw engine's time to its first chunk, (b) total time over HTTP vs raw,
and (c) audio-seconds per wall-second with 1, 2, 4 and 8 concurrent clients vs the raw engine run
in as many threads as there are cores, with each client's time to first audio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.server import free_port, start_server
from openfish.engines.base import SynthesisOptions
from openfish.engines.piper import PiperEngine

TEXTS = {
    "short (37 ch)": "The quick brown fox jumps over a dog.",
    "medium (190 ch)": (
        "When the morning train finally pulled into the station, the passengers, who had waited "
        "for more than an hour in the cold, hurried across the platform toward the warm waiting room."
    ),
    "long (1000 ch)": " ".join(
        [
            "Speech synthesis turns written text into audio that sounds like a person talking.",
            "A good service starts speaking almost at once, long before the whole text is ready,",
            "so that a listener never waits in silence while the rest is still being made.",
        ]
        * 4
    ),
}
REPEATS = 5
SAMPLE_RATE = 22050
BYTES_PER_SECOND = SAMPLE_RATE * 2  # pcm s16le mono


def raw_first_and_total(engine: PiperEngine, text: str) -> tuple[float, float, float]:
    """Raw engine: seconds to first chunk, seconds in all, audio seconds."""
    options = SynthesisOptions(voice="en_US-joe-medium")
    start = time.perf_counter()
    first = 0.0
    samples = 0
    for chunk in engine.synthesize(text, options):
        if not first:
            first = time.perf_counter() - start
        samples += chunk.size
    return first, time.perf_counter() - start, samples / SAMPLE_RATE


async def http_first_and_total(
    client: httpx.AsyncClient, token: str, text: str, fmt: str = "pcm"
) -> tuple[float, float, float]:
    """Over HTTP: seconds to first audio byte, seconds to the last byte, audio seconds (pcm)."""
    start = time.perf_counter()
    first = 0.0
    size = 0
    async with client.stream(
        "POST",
        "/api/open/v1/speech/tts",
        headers={"Authorization": f"Bearer {token}"},
        json={"text": text, "format": fmt},
    ) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            if chunk and not first:
                first = time.perf_counter() - start
            size += len(chunk)
    return first, time.perf_counter() - start, size / BYTES_PER_SECOND


def raw_throughput(engine: PiperEngine, text: str, threads: int, seconds: float = 6.0) -> float:
    """Audio seconds per wall second with ``threads`` threads synthesizing back to back."""
    produced = [0.0] * threads
    deadline = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < deadline:
            produced[index] += raw_first_and_total(engine, text)[2]

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(produced) / (time.perf_counter() - start)


async def http_throughput(
    base: str, token: str, text: str, clients: int, seconds: float = 6.0
) -> tuple[float, float, float]:
    """Audio seconds per wall second with ``clients`` clients; median and worst time to first audio."""
    firsts: list[float] = []
    produced = 0.0
    deadline = time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal produced
        while time.perf_counter() < deadline:
            first, _total, audio = await http_first_and_total(client, token, text)
            firsts.append(first)
            produced += audio

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return produced / (time.perf_counter() - start), statistics.median(firsts), max(firsts)


async def http_figures(base: str, token: str, engine: PiperEngine) -> None:
    print(
        f"{'text':<16} {'raw first':>10} {'http first':>11} {'raw total':>10} {'http total':>11} {'ratio':>6}"
    )
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await http_first_and_total(client, token, "Warm up.")
        for label, text in TEXTS.items():
            raw = [raw_first_and_total(engine, text) for _ in range(REPEATS)]
            http = [await http_first_and_total(client, token, text) for _ in range(REPEATS)]
            raw_first = statistics.median(r[0] for r in raw)
            raw_total = statistics.median(r[1] for r in raw)
            http_first = statistics.median(h[0] for h in http)
            http_total = statistics.median(h[1] for h in http)
            print(
                f"{label:<16} {raw_first * 1000:>8.0f}ms {http_first * 1000:>9.0f}ms "
                f"{raw_total * 1000:>8.0f}ms {http_total * 1000:>9.0f}ms {http_total / raw_total:>6.2f}"
            )
        mp3 = [
            await http_first_and_total(client, token, TEXTS["long (1000 ch)"], "mp3") for _ in range(REPEATS)
        ]
        print(f"long text as mp3: first byte {statistics.median(m[0] for m in mp3) * 1000:.0f} ms")


async def concurrency_figures(base: str, token: str, engine: PiperEngine) -> None:
    text = TEXTS["medium (190 ch)"]
    cores = os.cpu_count() or 1
    raw = raw_throughput(engine, text, cores)
    print(f"raw engine, {cores} threads: {raw:.1f} audio-s per wall-s")
    print(f"{'clients':>7} {'audio-s/s':>10} {'vs raw':>7} {'first audio p50':>16} {'worst':>7}")
    for clients in (1, 2, 4, 8):
        rate, median_first, worst_first = await http_throughput(base, token, text, clients)
        print(
            f"{clients:>7} {rate:>10.1f} {rate / raw:>7.2f} {median_first * 1000:>14.0f}ms "
            f"{worst_first * 1000:>5.0f}ms"
        )


def main() -> None:
    engine = PiperEngine.bundled()
    engine.load()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server, token = start_server(Path(tmp) / "data", port, Path(tmp) / "serve.log")
        try:
            base = f"http://127.0.0.1:{port}"
            print(f"openfish TTS benchmark ({os.cpu_count()} cores), medians of {REPEATS}, pcm unless noted")
            asyncio.run(http_figures(base, token, engine))
            asyncio.run(concurrency_figures(base, token, engine))
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()

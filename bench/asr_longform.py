"""Long-form decoding, today's path against the long-form one: ``python -m bench.asr --long-form``.

Two Piper recordings of at least five minutes: ordinary prose (68 different sentences, none
repeated) and repetitive speech ("This is sentence number N of a long story, told slowly." for N up
to 100). Each is transcribed by each model twice: by the engine as it decodes long audio now (cut at
pauses, batched: ``long_form=True``) and as it did before (faster-whisper's sequential
``transcribe`` with its whole temperature ladder: ``long_form=False``, kept for this comparison).
Every run is a fresh process (spawned), so its peak RSS is its own: model, audio and decode. The
same ordinary sentences are also transcribed one clip at a time, for the short-clip WER the
long-form WER is held against.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tests.audio_checks import word_error_rate
from tests.prose import PROSE_SENTENCES

from openfish.engines.base import Audio, SynthesisOptions
from openfish.engines.piper import PiperEngine
from openfish.engines.whisper import build_whisper_engines

SAMPLE_RATE = 22050
GAP_SECONDS = 0.35
REPEATS = 100
MORE_SENTENCES = PROSE_SENTENCES[18:]


@dataclass(frozen=True)
class Run:
    seconds: float
    text: str
    peak_rss_mib: float


def speak(piper: PiperEngine, texts: tuple[str, ...]) -> Audio:
    """``texts`` spoken one after another with a short pause between them."""
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), np.float32)
    parts: list[Audio] = []
    for text in texts:
        parts += [*piper.synthesize(text, SynthesisOptions(voice="en_US-joe-medium")), gap]
    return np.concatenate(parts).astype(np.float32)


def transcribe_in_child(models_dir: str, model: str, long_form: bool, audio_file: str) -> Run:
    """One transcription in this (fresh) process: load, decode, and the process's peak RSS."""
    engine = {e.name: e for e in build_whisper_engines(Path(models_dir), long_form=long_form)}[model]
    engine.load()
    audio = np.load(audio_file)
    began = time.perf_counter()
    text = engine.transcribe(audio, SAMPLE_RATE, language="en", words=False).text
    took = time.perf_counter() - began
    return Run(took, text, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def isolated(models_dir: Path, model: str, long_form: bool, audio_file: Path) -> Run:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(transcribe_in_child, str(models_dir), model, long_form, str(audio_file)).result()


def short_clip_wer(models_dir: Path, model: str, clips: list[Audio], texts: tuple[str, ...]) -> float:
    """WER over the same sentences transcribed one clip each (in this process)."""
    engine = {e.name: e for e in build_whisper_engines(models_dir)}[model]
    engine.load()
    errors = words = 0.0
    for clip, text in zip(clips, texts, strict=True):
        heard = engine.transcribe(clip, SAMPLE_RATE, language="en", words=False).text
        errors += word_error_rate(_spoken_numbers(text), _spoken_numbers(heard)) * len(text.split())
        words += len(text.split())
    return errors / words


def _spoken_numbers(text: str) -> str:
    """Whisper writes small numbers as words and "No." for "number"; the reference has digits."""
    names = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    words = re.sub(r"[^\w\s']", " ", re.sub(r"\bno\.", "number", text.lower())).split()
    return " ".join(str(names.index(w) + 1) if w in names else w for w in words)


def long_form_figures(models: tuple[str, ...], ordinary_sentences: tuple[str, ...]) -> None:
    piper = PiperEngine.bundled()
    piper.load()
    ordinary_texts = ordinary_sentences + MORE_SENTENCES
    repetitive_texts = tuple(
        f"This is sentence number {n} of a long story, told slowly." for n in range(1, REPEATS + 1)
    )
    clips = [speak(piper, (text,)) for text in ordinary_texts]
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), np.float32)
    recordings = {
        "ordinary": (np.concatenate([part for clip in clips for part in (clip, gap)]), ordinary_texts),
        "repetitive": (speak(piper, repetitive_texts), repetitive_texts),
    }
    print(
        f"\nlong-form decoding ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start): "
        + ", ".join(
            f"{k} {a.size / SAMPLE_RATE:.0f} s ({len(t)} sentences)" for k, (a, t) in recordings.items()
        )
    )
    print(
        f"{'model / speech':<26} {'path':<9} {'seconds':>8} {'RTF':>7} {'WER':>6} {'peak RSS':>9}  "
        "(today = sequential, whole temperature ladder; new = cut at pauses, batched)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(tmp) / "models"
        files = {}
        for label, (audio, _texts) in recordings.items():
            files[label] = Path(tmp) / f"{label}.npy"
            np.save(files[label], audio)
        for model in models:
            rtf: dict[tuple[str, str], float] = {}
            for label, (audio, texts) in recordings.items():
                reference = _spoken_numbers(" ".join(texts))
                for path, long_form in (("today", False), ("new", True)):
                    run = isolated(models_dir, model, long_form, files[label])
                    rtf[label, path] = run.seconds / (audio.size / SAMPLE_RATE)
                    error = word_error_rate(reference, _spoken_numbers(run.text))
                    print(
                        f"{model + ' ' + label:<26} {path:<9} {run.seconds:>8.1f} {rtf[label, path]:>7.3f} "
                        f"{error:>6.1%} {run.peak_rss_mib:>6.0f} MiB"
                    )
            for path in ("today", "new"):
                ratio = rtf["repetitive", path] / rtf["ordinary", path]
                print(f"{model:<26} {path:<9} repetitive / ordinary RTF {ratio:.2f}")
            short = short_clip_wer(models_dir, model, clips, ordinary_texts)
            print(f"{model:<26} short clips (one sentence each) WER {short:.1%}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")

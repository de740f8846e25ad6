"""Capability Protocols every engine implements, and the values they exchange.

Engines are synchronous and CPU-bound: the services call them from a bounded worker pool, never on
the event loop. Audio is float32 mono in [-1, 1] at the engine's ``sample_rate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers."""

    id: str
    name: str
    language: str
    engine: str


@dataclass(frozen=True)
class SynthesisOptions:
    """How to speak one piece of text.

    ``noise_scale`` / ``noise_w`` tune neural engines' variability (None = the voice's default).
    Tempo, pitch and level are applied to the audio afterwards, the same way for every engine.
    """

    voice: str
    noise_scale: float | None = None
    noise_w: float | None = None


@runtime_checkable
class SpeechEngine(Protocol):
    """Text in, audio chunks out."""

    @property
    def name(self) -> str:
        """The engine's registry name (e.g. ``piper``)."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate of every chunk this engine yields."""
        ...

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        ...

    def load(self) -> None:
        """Load the model; idempotent. Called once, at start or on first use."""
        ...

    def voices(self) -> list[VoiceInfo]:
        """Voices this engine can speak with."""
        ...

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        """Speak ``text``, yielding audio as it is produced (at least one chunk per sentence)."""
        ...


class EngineError(RuntimeError):
    """An engine failed to produce audio for a reason other than the caller's input."""


@runtime_checkable
class VoiceConverter(Protocol):
    """Makes a base voice's audio sound like a reference speaker (DSP or neural conversion).

    Profiles are opaque bytes the converter makes and reads; the server stores them as blobs, so
    a voice is analysed once and then converted chunk by chunk during streaming.
    """

    @property
    def name(self) -> str:
        """The converter's registry name (e.g. ``world``)."""
        ...

    def analyse(self, clips: list[Audio], sample_rate: int) -> bytes:
        """A speaker profile from one or more clips of the same speaker (blocking, CPU)."""
        ...

    def convert(self, audio: Audio, sample_rate: int, source: bytes, target: bytes) -> Audio:
        """``audio`` of the ``source`` speaker, made to sound like ``target``; same rate and length."""
        ...


@runtime_checkable
class CloningSpeechEngine(Protocol):
    """An engine that speaks directly in a voice given by reference audio (zero-shot cloning, e.g.
    a GPU fish-speech server). Voices created from reference audio work with either this or a
    ``VoiceConverter`` on top of a base voice; the API does not change."""

    @property
    def name(self) -> str:
        """The engine's registry name."""
        ...

    def synthesize_cloned(
        self, text: str, references: list[Audio], sample_rate: int, options: SynthesisOptions
    ) -> Iterator[Audio]:
        """Speak ``text`` in the voice of ``references``."""
        ...


@dataclass(frozen=True)
class Word:
    """One recognised word with its time span (seconds) and confidence."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech."""

    start: float
    end: float
    text: str
    words: list[Word] | None = None
    #: What the decoder reported (Whisper's own measures; 0 where an engine has none): the average
    #: log probability of its tokens, its compression ratio, the probability that it is silence,
    #: the temperature it was decoded at, the token ids, and where in the audio it was decoded from
    #: (in 10 ms frames).
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    tokens: tuple[int, ...] = ()
    seek: int = 0


@dataclass(frozen=True)
class SpeechFilter:
    """How an engine finds the speech in a recording before decoding it (voice-activity detection),
    so that silence is skipped: ``threshold``, the speech probability (0 – 1) above which a window
    counts as speech; ``min_silence_ms``, how long a silence must last to end a stretch of speech;
    ``padding_ms``, audio kept on each side of a stretch."""

    threshold: float = 0.5
    min_silence_ms: int = 2000
    padding_ms: int = 400


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode speech beyond the language: ``task`` ``transcribe`` (text in the language
    spoken) or ``translate`` (English text, Whisper's translate task); ``prompt``, text that came
    before (style, names, spelling); ``temperature``, one sampling temperature (None: greedy first,
    then higher temperatures where the decode fails its checks); ``speech``, how speech is told
    from silence.

    Audio longer than one 30 s window is cut at pauses and its windows decoded on their own, so
    there the ``prompt`` leads every window (not only the first), and with ``temperature`` None a
    window that fails the checks is decoded once more, at 0.2, not up the whole ladder."""

    task: str = "transcribe"
    prompt: str | None = None
    temperature: float | None = None
    speech: SpeechFilter = SpeechFilter()


@dataclass(frozen=True)
class Transcript:
    """What a transcription engine heard."""

    text: str
    language: str
    duration: float
    segments: list[Segment]


@runtime_checkable
class TranscriptionEngine(Protocol):
    """Audio in, text with timestamps out (blocking; run in the worker pool)."""

    @property
    def name(self) -> str:
        """The engine's registry name (e.g. ``whisper-base``)."""
        ...

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        ...

    def load(self) -> None:
        """Load the model; idempotent."""
        ...

    def languages(self) -> frozenset[str]:
        """Language codes the model can transcribe."""
        ...

    def tasks(self) -> frozenset[str]:
        """The ``DecodeOptions.task`` values the model can do (``transcribe``; ``translate``)."""
        ...

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
        """Transcribe mono float audio; ``language`` None means detect it.

        ``on_segment`` is called with each segment as soon as it is decoded, in order and on the
        calling thread, before the next one is decoded (streamed answers, progress); what it
        raises ends the decode and propagates unchanged (a listener that left stops the work).
        The transcript returned holds the same segments."""
        ...


class VadStream(Protocol):
    """Voice-activity state of one audio stream (not shared between streams)."""

    def probabilities(self, audio: Audio) -> list[float]:
        """Speech probability of each whole ``window`` of ``audio`` (16 kHz mono), in order.

        Callers pass whole windows; the model's recurrent state carries over between calls.
        """
        ...


@runtime_checkable
class VadEngine(Protocol):
    """Finds speech in 16 kHz mono audio, window by window (blocking; run in the worker pool)."""

    @property
    def name(self) -> str:
        """The engine's registry name (e.g. ``silero``)."""
        ...

    @property
    def window(self) -> int:
        """Samples per decision (512 at 16 kHz = 32 ms for Silero)."""
        ...

    def load(self) -> None:
        """Load the model; idempotent."""
        ...

    def stream(self) -> VadStream:
        """Fresh state for a new audio stream."""
        ...


@dataclass(frozen=True)
class LipSyncReport:
    """What a lip-sync render produced."""

    frames: int
    frames_with_face: int
    duration: float
    width: int
    height: int
    fps: float


class LipSyncInputError(ValueError):
    """The media cannot be lip-synced (corrupt or unsupported video, no face in any frame, over a
    limit); the message is shown to the client as the job's ``error_message``."""


@runtime_checkable
class LipSyncEngine(Protocol):
    """Makes a video's mouth follow an audio track (blocking; run in a worker thread).

    CPU engines warp the face; a neural engine (e.g. on a GPU) takes the same inputs.
    """

    @property
    def name(self) -> str:
        """The engine's registry name (e.g. ``mouth-warp``)."""
        ...

    def load(self) -> None:
        """Load models; idempotent."""
        ...

    def sync(
        self,
        video: Path,
        audio: Audio,
        sample_rate: int,
        output: Path,
        *,
        progress: Callable[[float], None],
    ) -> LipSyncReport:
        """Write an MP4 (H.264 + AAC carrying ``audio``) to ``output``, at the video's size and
        frame rate and as long as the audio; ``progress`` gets the fraction done now and then.
        Raises LipSyncInputError for media it cannot use, EngineError for its own failures."""
        ...

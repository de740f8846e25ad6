"""The one audio render chain of text to speech, used by sync streams, stored audio, jobs and
realtime alike: engine → voice conversion (made voices) → tempo and pitch → gain → output rate
(when a request asks for another than the engine's) → encoder.

Every call blocks (synthesis, DSP, encoding): run it in the worker pool, one call at a time per
:class:`Renderer` (the tempo filter and the encoder carry state from one piece to the next).
"""

from __future__ import annotations

import numpy as np

from openfish.audio.effects import TempoPitch
from openfish.audio.encode import StreamEncoder, apply_gain_db, encode_complete, make_encoder
from openfish.audio.resample import StreamResampler
from openfish.engines.base import Audio, EngineError
from openfish.services.tts.planner import SynthesisPlan


class NoAudio(EngineError):
    """The engine made no samples at all for a plan's text: never an answer to send or store."""


def converted(plan: SynthesisPlan, audio: Audio) -> Audio:
    """``audio`` of the plan's base voice in the plan's made voice (unchanged for built-in voices)."""
    conversion = plan.conversion
    if conversion is None:
        return audio
    return conversion.converter.convert(audio, plan.engine.sample_rate, conversion.source, conversion.target)


class Renderer:
    """A plan's audio, piece by piece: shaped samples, or encoded bytes for a stream."""

    def __init__(self, plan: SynthesisPlan) -> None:
        self._plan = plan
        self._shaper = TempoPitch(plan.engine.sample_rate, plan.tempo, plan.pitch_semitones)
        self._resampler = StreamResampler(plan.engine.sample_rate, plan.sample_rate)
        self._encoder: StreamEncoder | None = None
        self._started = False

    @property
    def encoder(self) -> StreamEncoder:
        """The stream encoder of the plan's format (made on first use)."""
        if self._encoder is None:
            self._encoder = make_encoder(self._plan.format, self._plan.sample_rate, self._plan.bitrate_kbps)
        return self._encoder

    def samples(self, text: str) -> Audio:
        """The shaped samples of one piece of text."""
        plan = self._plan
        parts = [self._shape(audio) for audio in plan.engine.synthesize(text, plan.options)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def tail(self) -> Audio:
        """What the tempo filter and the resampler still hold, shaped: the end of the audio."""
        rest = self._resampler.process(apply_gain_db(self._shaper.flush(), self._plan.gain_db))
        return np.concatenate([rest, self._resampler.flush()])

    def header(self) -> bytes:
        """The stream's header (empty for formats without one); only the first call returns it."""
        if self._started:
            return b""
        self._started = True
        return self.encoder.header()

    def piece(self, text: str) -> tuple[bytes, int]:
        """One piece encoded for the stream (after the header, if not sent yet), and its samples."""
        shaped = self.samples(text)
        return self.header() + self.encoder.encode(shaped), shaped.size

    def finish(self) -> tuple[bytes, int]:
        """The end of the stream: the tail encoded and the encoder flushed, and the tail's samples."""
        tail = self.tail()
        return self.header() + self.encoder.encode(tail) + self.encoder.finish(), tail.size

    def _shape(self, audio: Audio) -> Audio:
        shaped = apply_gain_db(self._shaper.process(converted(self._plan, audio)), self._plan.gain_db)
        return self._resampler.process(shaped)


def render_whole(plan: SynthesisPlan) -> bytes:
    """The plan's whole audio as one file (exact sizes in its header); NoAudio if there is none."""
    renderer = Renderer(plan)
    samples = np.concatenate([*(renderer.samples(piece) for piece in plan.pieces), renderer.tail()])
    if samples.size == 0:
        raise NoAudio(f"{plan.engine.name} made no audio for this text")
    return encode_complete(samples, plan.format, plan.sample_rate, plan.bitrate_kbps)

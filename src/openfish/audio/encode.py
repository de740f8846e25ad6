"""Encoders that turn float32 mono speech into mp3, wav, raw pcm, Ogg Opus, AAC (ADTS) or FLAC
bytes as it is made.

Every encoder is incremental: ``header()`` once, ``encode()`` for each chunk of audio, ``finish()``
once at the end; concatenating what they return gives a complete file. An encoder keeps state and
is not thread-safe: calls may come from different threads but must not overlap.

This module is the interface; the encoders themselves are in :mod:`openfish.audio.encoders` (pcm,
wav, mp3) and :mod:`openfish.audio.av_encoders` (Ogg Opus, AAC, FLAC through PyAV).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from openfish.audio.av_encoders import AacEncoder, FlacEncoder, OpusEncoder
from openfish.audio.encoders import (
    BaseEncoder,
    Mp3Encoder,
    PcmEncoder,
    Samples,
    WavEncoder,
    mono_float32,
    pcm_bytes,
    to_int16,
    wav_header,
)

__all__ = [
    "AUDIO_FORMATS",
    "StreamEncoder",
    "apply_gain_db",
    "encode_complete",
    "make_encoder",
    "to_int16",
]

AUDIO_FORMATS = ("mp3", "wav", "pcm", "opus", "aac", "flac")


class StreamEncoder(Protocol):
    """Incremental encoder for one audio stream of float32 mono samples at ``sample_rate``."""

    format: str
    content_type: str
    sample_rate: int

    def header(self) -> bytes:
        """Bytes to send before any audio (the WAV header for wav, ``b""`` otherwise)."""
        ...

    def encode(self, samples: npt.NDArray[np.floating]) -> bytes:
        """Encode a chunk of samples in [-1, 1]; return the bytes ready so far (may be ``b""``)."""
        ...

    def finish(self) -> bytes:
        """Flush and return the remaining bytes; called once, after the last ``encode``."""
        ...


def apply_gain_db(samples: npt.NDArray[np.floating], db: float) -> Samples:
    """Return ``samples`` (as float32) multiplied by ``10 ** (db / 20)`` and clipped to [-1, 1]."""
    audio = np.asarray(samples, dtype=np.float32)
    gained: Samples = np.clip(audio * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0)
    return gained


_ENCODERS: dict[str, type[BaseEncoder]] = {
    "mp3": Mp3Encoder,
    "wav": WavEncoder,
    "pcm": PcmEncoder,
    "opus": OpusEncoder,
    "aac": AacEncoder,
    "flac": FlacEncoder,
}


def make_encoder(fmt: str, sample_rate: int, bitrate_kbps: int | None = None) -> StreamEncoder:
    """A fresh streaming encoder for ``fmt`` (one of ``AUDIO_FORMATS``); ValueError if unknown.
    ``bitrate_kbps`` sets the bitrate of formats that have one (mp3, opus, aac); others ignore it."""
    try:
        encoder_type = _ENCODERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown audio format {fmt!r}; expected one of {', '.join(AUDIO_FORMATS)}"
        ) from None
    return encoder_type(sample_rate, bitrate_kbps)


def encode_complete(
    samples: npt.NDArray[np.floating], fmt: str, sample_rate: int, bitrate_kbps: int | None = None
) -> bytes:
    """Encode audio known in full up front, e.g. for storing; WAV gets its exact sizes."""
    if fmt == "wav":
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        data = pcm_bytes(mono_float32(samples))
        return wav_header(sample_rate, len(data)) + data
    encoder = make_encoder(fmt, sample_rate, bitrate_kbps)
    return encoder.header() + encoder.encode(samples) + encoder.finish()

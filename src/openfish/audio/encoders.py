"""The encoders behind :func:`openfish.audio.encode.make_encoder`: their shared base, the 16-bit
PCM and WAV bytes, and the pcm, wav and mp3 (LAME, through lameenc) encoders. Ogg Opus, AAC and
FLAC go through PyAV, in :mod:`openfish.audio.av_encoders`. Callers use :mod:`openfish.audio.encode`.
"""

from __future__ import annotations

import struct

import lameenc
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

# Sample rates MPEG-1/2/2.5 layer III can carry; for others LAME picks an output rate itself.
_MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# RIFF and data sizes for a WAV whose length is not known yet. ffmpeg writes 0xFFFFFFFF when its
# output cannot seek back (ff_start_tag), and both ffmpeg and libsndfile then read to end of
# file; a size of 0, the other common choice, makes libsndfile see zero frames.
_WAV_UNKNOWN_SIZE = 0xFFFFFFFF
_WAV_HEADER_BYTES = 44


def to_int16(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Float samples to 16-bit PCM: NaN becomes 0, values are clipped to [-1, 1], then scaled.

    The scale is symmetric (±32767) so +1.0 and -1.0 have the same magnitude.
    """
    # Casting NaN or inf to an integer is undefined (and warns), so sanitise first.
    clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    scaled: npt.NDArray[np.float32] = np.rint(np.clip(clean, -1.0, 1.0) * np.float32(32767.0))
    return scaled.astype(np.int16)


def mono_float32(samples: npt.NDArray[np.floating]) -> Samples:
    """``samples`` as float32; ValueError unless they are 1-D (mono)."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected 1-D mono samples, got shape {audio.shape}")
    return audio


def pcm_bytes(samples: Samples) -> bytes:
    """``samples`` as signed 16-bit little-endian PCM bytes (see :func:`to_int16`)."""
    return to_int16(samples).astype("<i2", copy=False).tobytes()


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """Canonical 44-byte PCM s16le mono header; ``data_bytes=None`` means "length unknown"."""
    if data_bytes is None:
        riff_size = data_size = _WAV_UNKNOWN_SIZE
    else:
        riff_size = _WAV_HEADER_BYTES - 8 + data_bytes
        data_size = data_bytes
        if riff_size >= _WAV_UNKNOWN_SIZE:
            raise ValueError("audio too long for a WAV file (over 4 GiB)")
    channels, bits = 1, 16
    block_align = channels * bits // 8
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack(
            "<4sIHHIIHH", b"fmt ", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits
        )
        + struct.pack("<4sI", b"data", data_size)
    )


class BaseEncoder:
    """Shared bookkeeping of every encoder (each a ``StreamEncoder``): input checks and the
    header/encode/finish order. A subclass sets ``format`` and ``content_type`` and implements
    ``_encode`` (and ``_finish`` when it holds bytes back)."""

    format: str
    content_type: str

    def __init__(self, sample_rate: int, bitrate_kbps: int | None = None) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        if bitrate_kbps is not None and bitrate_kbps <= 0:
            raise ValueError(f"bitrate must be positive, got {bitrate_kbps}")
        self.sample_rate = sample_rate
        #: The bitrate asked for (formats with one: mp3, opus); None: the format's default.
        self.bitrate_kbps = bitrate_kbps
        self._finished = False

    def header(self) -> bytes:
        return b""

    def encode(self, samples: npt.NDArray[np.floating]) -> bytes:
        if self._finished:
            raise RuntimeError("encode() called after finish()")
        audio = mono_float32(samples)
        return self._encode(audio) if audio.size else b""

    def finish(self) -> bytes:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        return self._finish()

    def _encode(self, samples: Samples) -> bytes:
        raise NotImplementedError

    def _finish(self) -> bytes:
        return b""


class PcmEncoder(BaseEncoder):
    """Headerless signed 16-bit little-endian mono PCM."""

    format = "pcm"

    def __init__(self, sample_rate: int, bitrate_kbps: int | None = None) -> None:
        super().__init__(sample_rate, bitrate_kbps)
        # Raw PCM says nothing about itself, so the content type carries everything needed to play it.
        self.content_type = f"audio/pcm;rate={sample_rate};encoding=s16le;channels=1"

    def _encode(self, samples: Samples) -> bytes:
        return pcm_bytes(samples)


class WavEncoder(BaseEncoder):
    """16-bit PCM mono WAV whose header declares an unknown (0xFFFFFFFF) length."""

    format = "wav"
    content_type = "audio/wav"

    def header(self) -> bytes:
        return wav_header(self.sample_rate, None)

    def _encode(self, samples: Samples) -> bytes:
        return pcm_bytes(samples)


class Mp3Encoder(BaseEncoder):
    """Constant-bitrate mono MP3 via LAME (by default 64 kbps up to 24 kHz input, 96 kbps above)."""

    format = "mp3"
    content_type = "audio/mpeg"

    def __init__(self, sample_rate: int, bitrate_kbps: int | None = None) -> None:
        super().__init__(sample_rate, bitrate_kbps)
        self._lame = lameenc.Encoder()
        self._lame.set_channels(1)
        self._lame.set_in_sample_rate(sample_rate)
        if sample_rate in _MP3_RATES:
            # LAME otherwise picks its own output rate from the bitrate (44.1 kHz at 32 kbps comes out
            # at 22.05 kHz); pinning it keeps the rate clients get independent of that choice.
            self._lame.set_out_sample_rate(sample_rate)
        if self.bitrate_kbps is None:
            self.bitrate_kbps = 64 if sample_rate <= 24000 else 96
        self._lame.set_bit_rate(self.bitrate_kbps)
        # 3 is LAME's default speed/quality trade-off; 2 ("high") took about 2.3x the CPU when
        # measured (10 s at 22.05 kHz: 57 ms vs 25 ms), which adds up across concurrent streams.
        self._lame.set_quality(3)
        self._started = False

    def _encode(self, samples: Samples) -> bytes:
        self._started = True
        return bytes(self._lame.encode(pcm_bytes(samples)))

    def _finish(self) -> bytes:
        # lameenc initialises LAME on the first encode and refuses to flush before it.
        return bytes(self._lame.flush()) if self._started else b""

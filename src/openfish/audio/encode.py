"""Encoders that turn float32 mono speech into mp3, wav, raw pcm, Ogg Opus, AAC (ADTS) or FLAC
bytes as it is made.

Every encoder is incremental: ``header()`` once, ``encode()`` for each chunk of audio, ``finish()``
once at the end; concatenating what they return gives a complete file. An encoder keeps state and
is not thread-safe: calls may come from different threads but must not overlap.
"""

from __future__ import annotations

import struct
from typing import Protocol

import av
import lameenc
import numpy as np
import numpy.typing as npt

AUDIO_FORMATS = ("mp3", "wav", "pcm", "opus", "aac", "flac")

Samples = npt.NDArray[np.float32]

# Sample rates MPEG-1/2/2.5 layer III can carry; for others LAME picks an output rate itself.
_MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
# Opus decoders (FFmpeg, browsers) output 48 kHz whatever rate was encoded, so encoding at a lower
# permitted rate would save nothing and add a second resampling step on the listener's side.
_OPUS_RATE = 48000
_OPUS_FRAME = 960  # 20 ms at 48 kHz, libopus' default frame duration
_OPUS_BITRATE = 48_000
_AAC_BITRATE = 64_000
# Samples per FLAC frame: 46 ms at 22.05 kHz, so a stream's audio leaves as it is made.
_FLAC_FRAME = 1024
# The Ogg muxer holds packets until a page spans this long (default 1 s, which would stall a
# stream). 40 ms keeps first audio within ~0.1 s of input while page overhead stays near 5 %.
_OGG_PAGE_DURATION_US = 40_000
# RIFF and data sizes for a WAV whose length is not known yet. ffmpeg writes 0xFFFFFFFF when its
# output cannot seek back (ff_start_tag), and both ffmpeg and libsndfile then read to end of
# file; a size of 0, the other common choice, makes libsndfile see zero frames.
_WAV_UNKNOWN_SIZE = 0xFFFFFFFF
_WAV_HEADER_BYTES = 44


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


def to_int16(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Float samples to 16-bit PCM: NaN becomes 0, values are clipped to [-1, 1], then scaled.

    The scale is symmetric (±32767) so +1.0 and -1.0 have the same magnitude.
    """
    # Casting NaN or inf to an integer is undefined (and warns), so sanitise first.
    clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    scaled: npt.NDArray[np.float32] = np.rint(np.clip(clean, -1.0, 1.0) * np.float32(32767.0))
    return scaled.astype(np.int16)


def apply_gain_db(samples: npt.NDArray[np.floating], db: float) -> Samples:
    """Return ``samples`` (as float32) multiplied by ``10 ** (db / 20)`` and clipped to [-1, 1]."""
    audio = np.asarray(samples, dtype=np.float32)
    gained: Samples = np.clip(audio * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0)
    return gained


def _mono_float32(samples: npt.NDArray[np.floating]) -> Samples:
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected 1-D mono samples, got shape {audio.shape}")
    return audio


def _pcm_bytes(samples: Samples) -> bytes:
    return to_int16(samples).astype("<i2", copy=False).tobytes()


def _wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
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


class _Encoder:
    """Shared bookkeeping: input checks and the header/encode/finish order."""

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
        audio = _mono_float32(samples)
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


class PcmEncoder(_Encoder):
    """Headerless signed 16-bit little-endian mono PCM."""

    format = "pcm"

    def __init__(self, sample_rate: int, bitrate_kbps: int | None = None) -> None:
        super().__init__(sample_rate, bitrate_kbps)
        # Raw PCM says nothing about itself, so the content type carries everything needed to play it.
        self.content_type = f"audio/pcm;rate={sample_rate};encoding=s16le;channels=1"

    def _encode(self, samples: Samples) -> bytes:
        return _pcm_bytes(samples)


class WavEncoder(_Encoder):
    """16-bit PCM mono WAV whose header declares an unknown (0xFFFFFFFF) length."""

    format = "wav"
    content_type = "audio/wav"

    def header(self) -> bytes:
        return _wav_header(self.sample_rate, None)

    def _encode(self, samples: Samples) -> bytes:
        return _pcm_bytes(samples)


class Mp3Encoder(_Encoder):
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
        return bytes(self._lame.encode(_pcm_bytes(samples)))

    def _finish(self) -> bytes:
        # lameenc initialises LAME on the first encode and refuses to flush before it.
        return bytes(self._lame.flush()) if self._started else b""


class _ByteSink:
    """Write-only file object for PyAV; having no seek() makes the muxer stream forward only."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _PyAVEncoder(_Encoder):
    """A codec in a container through PyAV, muxed forward only (no seeking back to patch headers)
    so every byte is final when it is returned. Input at any rate is resampled (and re-chunked to
    the codec's frame size) inside."""

    container: str
    codec: str
    #: The codec's sample format, the samples per frame it takes, and its rate (None: the input's).
    sample_format: str
    frame_size: int
    rate: int | None = None
    #: Bits per second unless the caller asks for another bitrate (None: the codec has none).
    default_bitrate: int | None = None
    container_options: dict[str, str] = {}  # noqa: RUF012 (read only)
    codec_options: dict[str, str] = {}  # noqa: RUF012 (read only)

    def __init__(self, sample_rate: int, bitrate_kbps: int | None = None) -> None:
        super().__init__(sample_rate, bitrate_kbps)
        rate = self.rate or sample_rate
        self._sink = _ByteSink()
        self._container = av.open(
            self._sink,
            mode="w",
            format=self.container,
            container_options=self.container_options,
            # A small I/O buffer so finished packets reach the caller instead of waiting for 32 KiB.
            buffer_size=4096,
        )
        stream = self._container.add_stream(self.codec, rate=rate, layout="mono", options=self.codec_options)
        assert isinstance(stream, av.AudioStream)  # an audio codec's stream
        self._stream = stream
        if self.default_bitrate is not None:
            self._stream.bit_rate = self.bitrate_kbps * 1000 if self.bitrate_kbps else self.default_bitrate
        self._resampler = av.AudioResampler(
            format=self.sample_format, layout="mono", rate=rate, frame_size=self.frame_size
        )

    def _encode(self, samples: Samples) -> bytes:
        # 16-bit codecs get our own conversion (as WAV and PCM do), not the resampler's scaling.
        if self.sample_format == "s16":
            frame = av.AudioFrame.from_ndarray(to_int16(samples).reshape(1, -1), format="s16", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples).reshape(1, -1), format="flt", layout="mono"
            )
        frame.sample_rate = self.sample_rate
        self._push(self._resampler.resample(frame))
        return self._sink.drain()

    def _finish(self) -> bytes:
        self._push(self._resampler.resample(None))
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return self._sink.drain()

    def _push(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            self._container.mux(self._stream.encode(frame))


class OpusEncoder(_PyAVEncoder):
    """Ogg Opus at 48 kHz, 48 kbps unless told otherwise."""

    format = "opus"
    content_type = "audio/ogg; codecs=opus"
    container = "ogg"
    codec = "libopus"
    # Libopus only accepts whole 20 ms frames (bar the last).
    sample_format, frame_size, rate = "flt", _OPUS_FRAME, _OPUS_RATE
    default_bitrate = _OPUS_BITRATE
    container_options = {"page_duration": str(_OGG_PAGE_DURATION_US)}  # noqa: RUF012
    codec_options = {"application": "audio"}  # noqa: RUF012


class AacEncoder(_PyAVEncoder):
    """AAC-LC in ADTS frames (each self-describing, so the stream plays from any point) at the
    input's rate, 64 kbps unless told otherwise. Decoders add about 46 ms of priming at the start."""

    format = "aac"
    content_type = "audio/aac"
    container = "adts"
    codec = "aac"
    sample_format, frame_size = "fltp", 1024
    default_bitrate = _AAC_BITRATE


class FlacEncoder(_PyAVEncoder):
    """16-bit FLAC at the input's rate. Written forward only, so STREAMINFO does not state the total
    length (decoders read to the end, as for a stream); the audio itself is lossless."""

    format = "flac"
    content_type = "audio/flac"
    container = "flac"
    codec = "flac"
    sample_format, frame_size = "s16", _FLAC_FRAME


_ENCODERS: dict[str, type[_Encoder]] = {
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
        data = _pcm_bytes(_mono_float32(samples))
        return _wav_header(sample_rate, len(data)) + data
    encoder = make_encoder(fmt, sample_rate, bitrate_kbps)
    return encoder.header() + encoder.encode(samples) + encoder.finish()

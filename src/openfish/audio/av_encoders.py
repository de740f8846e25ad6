"""Ogg Opus, AAC (ADTS) and FLAC encoders through PyAV, muxed forward only, behind
:func:`openfish.audio.encode.make_encoder`.
"""

from __future__ import annotations

import av
import numpy as np

from openfish.audio.encoders import BaseEncoder, Samples, to_int16

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


class _PyAVEncoder(BaseEncoder):
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

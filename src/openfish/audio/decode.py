"""Decoding uploaded audio (any container and codec FFmpeg reads) to float32 mono samples."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer


class UndecodableAudio(ValueError):
    """The input is not audio we can decode, is corrupt, or is longer than allowed."""


class AudioTooLong(UndecodableAudio):
    """The audio is longer than the caller allows (decoding stopped at the limit)."""


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Float32 mono samples at the input's native ``sample_rate``.

    Lossy codecs may overshoot slightly, so values are not guaranteed to lie within [-1, 1].
    """

    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration_seconds(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate


# Demuxers such as concat and hls open further files named inside the input; for untrusted bytes
# that would read local files (or fetch URLs). No protocol is whitelisted, so any nested open fails
# while the input itself, read through our own I/O object, is unaffected.
_OPEN_OPTIONS = {"protocol_whitelist": "none"}


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> DecodedAudio:
    """Decode the first audio stream of ``data``, downmixing to mono by averaging the channels.

    Raises UndecodableAudio for empty, corrupt or non-audio input, and, as soon as the decoded
    length passes it, for audio longer than ``max_seconds``.
    """
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if not data:
        raise UndecodableAudio("no audio data (empty input)")
    try:
        container = av.open(io.BytesIO(data), mode="r", options=_OPEN_OPTIONS)
    except av.FFmpegError as exc:
        raise UndecodableAudio(f"not a recognised audio file ({exc.strerror})") from exc
    with container:
        if not container.streams.audio:
            raise UndecodableAudio("the file contains no audio stream")
        stream = container.streams.audio[0]
        chunks: list[npt.NDArray[np.float32]] = []
        total = 0
        sample_rate = 0
        try:
            for frame in _float_frames(container, stream):
                if sample_rate == 0:
                    sample_rate = frame.sample_rate
                elif frame.sample_rate != sample_rate:
                    raise UndecodableAudio("the sample rate changes part-way through the audio")
                chunks.append(_mono(frame))
                total += frame.samples
                if max_seconds is not None and total > max_seconds * sample_rate:
                    raise AudioTooLong(f"audio is longer than the {max_seconds:g} s allowed")
        except UndecodableAudio:
            raise
        except av.FFmpegError as exc:
            raise UndecodableAudio(f"corrupt audio data ({exc.strerror})") from exc
        except ValueError as exc:
            # PyAV's resampler raises a plain ValueError when the format or layout changes mid-stream.
            raise UndecodableAudio(f"audio parameters change part-way through ({exc})") from exc
    if total == 0 or sample_rate <= 0:
        raise UndecodableAudio("the file contains no decodable audio samples")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    return DecodedAudio(samples=samples, sample_rate=sample_rate)


def probe_duration(path: Path) -> float | None:
    """The length in seconds of the first audio stream of the file at ``path``, read from its headers
    (nothing is decoded, so this is cheap even for hours of audio); None when the headers do not say,
    or when the file is not audio FFmpeg reads (decoding it is what tells why)."""
    try:
        with path.open("rb") as source, av.open(source, mode="r", options=_OPEN_OPTIONS) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except av.FFmpegError:
        return None
    return None


def _float_frames(container: InputContainer, stream: AudioStream) -> Iterator[av.AudioFrame]:
    """Decoded frames as planar float32, in order, resampler flushed at the end."""
    # Only the sample format is converted; channels are averaged in _mono because FFmpeg's own
    # downmix does not preserve level (stereo comes out 3 dB louder, 5.1 can clip).
    resampler = av.AudioResampler(format="fltp")
    for decoded in container.decode(stream):
        yield from resampler.resample(decoded)
    yield from resampler.resample(None)


def _mono(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    planes = frame.to_ndarray()
    mono: npt.NDArray[np.float32] = planes.mean(axis=0, dtype=np.float32) if len(planes) > 1 else planes[0]
    return mono

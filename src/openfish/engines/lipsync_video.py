"""Video in and out for the lip-sync engine, with PyAV: probing, decoding (looped when the audio
outlasts the video), copying decoded planes, and encoding H.264 frames and AAC audio as they come."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from openfish.engines.base import Audio, LipSyncInputError

#: Sample rates FFmpeg's AAC encoder accepts; other rates are resampled to the next one up.
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream as coded: frame size, frame rate and display rotation (degrees
    counter-clockwise, a multiple of 90)."""

    width: int
    height: int
    rate: Fraction
    rotation: int

    @property
    def turns(self) -> int:
        """Quarter turns (counter-clockwise) that make a frame upright."""
        return self.rotation // 90


def open_video(video: Path) -> tuple[InputContainer, VideoStream]:
    """The file opened, and its first video stream (decoded on FFmpeg's own threads)."""
    try:
        container = av.open(str(video), mode="r")
    except av.FFmpegError as err:
        raise LipSyncInputError("the video could not be read: the file is damaged or not a video") from err
    if not container.streams.video:
        container.close()
        raise LipSyncInputError("the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def decoded_frames(container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]:
    """The stream's frames; a damaged file is the caller's input error, not an engine failure."""
    try:
        yield from container.decode(stream)
    except av.FFmpegError as err:
        raise LipSyncInputError("the video could not be decoded: the file is damaged") from err


def probe_video(video: Path, max_pixels: int) -> VideoInfo:
    """The video's size and frame rate, after checking that a first frame decodes."""
    container, stream = open_video(video)
    with container:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        first = next(decoded_frames(container, stream), None)
    if first is None:
        raise LipSyncInputError("the video has no frames")
    if first.width * first.height > max_pixels:
        raise LipSyncInputError(
            f"the video is {first.width}x{first.height}; videos may have at most {max_pixels} pixels"
        )
    if first.width < 2 or first.height < 2:
        raise LipSyncInputError("the video's frames are too small")
    if rate is None or not 1 <= rate <= 240:
        raise LipSyncInputError("the video has no usable frame rate")
    rotation = round(first.rotation / 90) % 4 * 90
    # Averages over variable-rate streams can be odd fractions; a near one is kinder to players.
    return VideoInfo(first.width, first.height, Fraction(rate).limit_denominator(1001), rotation)


def looped_frames(video: Path) -> Generator[tuple[VideoFrame, int]]:
    """The video's frames with the pass they come from (0, 1, ...), from its start again and
    again: re-decoded each time, never held (except a still image's one frame)."""
    lap = 0
    while True:
        container, stream = open_video(video)
        first: VideoFrame | None = None
        count = 0
        with container:
            for frame in decoded_frames(container, stream):
                if first is None:
                    first = frame
                count += 1
                yield frame, lap
        if first is None:
            raise LipSyncInputError("the video has no frames")
        lap += 1
        if count == 1:
            while True:  # a still image (a photo): opening and decoding it again would gain nothing
                yield first, lap
                lap += 1


def copy_planes(
    frame: VideoFrame, y: npt.NDArray[np.uint8], u: npt.NDArray[np.uint8], v: npt.NDArray[np.uint8]
) -> None:
    """Copy a decoded frame's planes (converted to 4:2:0 if need be) into ``y``, ``u``, ``v``."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    for plane, target in zip(frame.planes, (y, u, v), strict=True):
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
        target[...] = rows[: target.shape[0], : target.shape[1]]


def encode_frame(
    container: OutputContainer,
    stream: VideoStream,
    planes: npt.NDArray[np.uint8],
    index: int,
    time_base: Fraction,
) -> None:
    """Encode one 4:2:0 frame (``planes`` stacked as I420) as frame ``index`` of the output."""
    frame = VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.pts = index
    frame.time_base = time_base
    for packet in stream.encode(frame):
        container.mux(packet)


def aac_rate(sample_rate: int) -> int:
    """The AAC encoder's rate for audio at ``sample_rate``."""
    return next((rate for rate in AAC_RATES if rate >= sample_rate), AAC_RATES[-1])


class AudioWriter:
    """Feeds the audio to the AAC encoder piece by piece, keeping pace with the video."""

    def __init__(
        self, container: OutputContainer, stream: AudioStream, samples: Audio, sample_rate: int
    ) -> None:
        self._container = container
        self._stream = stream
        self._samples = samples
        self._rate = sample_rate
        self._done = 0

    def write_until(self, end: int) -> None:
        """Encode the audio up to sample ``end`` (or its end)."""
        end = min(self._samples.size, end)
        if end <= self._done:
            return
        frame = av.AudioFrame.from_ndarray(self._samples[None, self._done : end], format="flt", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._done
        frame.time_base = Fraction(1, self._rate)
        self._done = end
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def finish(self) -> None:
        """Encode the rest of the audio and flush the encoder."""
        self.write_until(self._samples.size)
        for packet in self._stream.encode(None):
            self._container.mux(packet)

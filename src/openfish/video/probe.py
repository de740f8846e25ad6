"""What a video file holds, read from its headers and first frame (cheap: no full decode)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


class UnusableVideo(ValueError):
    """The file is not a video this server can use; the message says why (shown to clients)."""


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file."""

    width: int
    height: int
    fps: float
    duration: float | None


def probe_video(path: Path, *, max_pixels: int, max_seconds: float) -> VideoInfo:
    """The video's size, rate and length; UnusableVideo when it is corrupt, has no video stream,
    no decodable frame, or is over the limits."""
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise UnusableVideo("the file has no video stream")
            stream = container.streams.video[0]
            frame = next(container.decode(stream), None)
            if frame is None:
                raise UnusableVideo("the video has no frames")
            rate = stream.average_rate or stream.guessed_rate
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            info = VideoInfo(frame.width, frame.height, float(rate) if rate else 0.0, duration)
    except av.FFmpegError as exc:
        raise UnusableVideo(f"not a recognised video file ({exc.strerror})") from exc
    if info.width * info.height > max_pixels:
        raise UnusableVideo(f"the video is {info.width}x{info.height}; at most {max_pixels} pixels per frame")
    if not 1 <= info.fps <= 120:
        raise UnusableVideo(f"unsupported frame rate {info.fps:g}")
    if info.duration is not None and info.duration > max_seconds:
        raise UnusableVideo(f"the video is {info.duration:.0f} s long; at most {max_seconds:g} s")
    return info

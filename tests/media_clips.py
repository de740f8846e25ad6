"""Test media made on the spot (nothing is downloaded): videos of a face (scikit-image's bundled
astronaut photo, gently panned and zoomed so the face moves), videos without a face, and speech with
clear pauses from the bundled Piper voice."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.stream import VideoStream
from skimage import data

from openfish.engines.base import Audio, SynthesisOptions
from openfish.engines.piper import PiperEngine

Rgb = npt.NDArray[np.uint8]

#: Centre of the face in ``skimage.data.astronaut()`` (x, y) and its forehead-to-chin height, px.
ASTRONAUT_FACE = (223.0, 124.0)
ASTRONAUT_FACE_HEIGHT = 103.0
#: Separate words and short phrases: the loudness rises and falls to silence between them.
PHRASES = ("Hello!", "Banana.", "Wow, look at that.", "Mama.", "Open wide.", "Yes.", "Far away.")
PAUSE_SECONDS = 0.3


def _encode(
    path: Path, frames: Iterator[Rgb], size: tuple[int, int], fps: int, codec: str, rotation: int = 0
) -> Path:
    """Encode RGB frames: ``libx264`` (yuv420p, MP4) or ``ffv1`` (lossless, odd sizes, Matroska),
    marked to be shown turned ``rotation`` degrees counter-clockwise."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "18"}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@cache
def astronaut() -> Rgb:
    """scikit-image's bundled 512×512 RGB portrait (read once)."""
    image = data.astronaut()  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(image, dtype=np.uint8)


def face_frame(t: float, size: tuple[int, int], motion: bool = True) -> Rgb:
    """The astronaut at time ``t`` (s): the face fills about a third of the height, centred, and
    with ``motion`` drifts a few pixels and breathes in scale by a few percent."""
    width, height = size
    scale = 0.35 * height / ASTRONAUT_FACE_HEIGHT
    dx = dy = 0.0
    if motion:
        scale *= 1 + 0.02 * math.sin(2 * math.pi * t / 3.1)
        dx = 0.012 * width * math.sin(2 * math.pi * t / 2.3)
        dy = 0.008 * height * math.sin(2 * math.pi * t / 3.7)
    cx, cy = ASTRONAUT_FACE
    matrix = np.array(
        [[scale, 0, width / 2 + dx - cx * scale], [0, scale, height * 0.45 + dy - cy * scale]],
        dtype=np.float32,
    )
    warped = cv2.warpAffine(
        astronaut(), matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return np.asarray(warped, dtype=np.uint8)


def face_video(
    path: Path,
    seconds: float,
    fps: int = 25,
    size: tuple[int, int] = (854, 480),
    motion: bool = True,
    rotation: int = 0,
) -> Path:
    """An H.264 MP4 (or, for odd sizes, FFV1 in Matroska) of the astronaut's face, ``size`` as
    displayed. With ``rotation`` (90, 180, 270) the frames are stored turned clockwise by it and
    marked to be turned back for display, the way phones store upright video."""
    count = round(seconds * fps)
    turns = rotation // 90
    frames = (
        np.ascontiguousarray(np.rot90(face_frame(index / fps, size, motion), -turns))
        for index in range(count)
    )
    coded = (size[1], size[0]) if turns % 2 else size
    codec = "ffv1" if size[0] % 2 or size[1] % 2 else "libx264"
    return _encode(path, frames, coded, fps, codec, rotation)


def face_image(path: Path, size: tuple[int, int] = (640, 360)) -> Path:
    """A still photo of the astronaut (PNG): a video of one frame."""
    bgr = cv2.cvtColor(face_frame(0.0, size, motion=False), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")
    return path


def faceless_video(path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (640, 360)) -> Path:
    """An H.264 MP4 of drifting colour gradients with a little noise, and no face."""
    width, height = size
    rng = np.random.default_rng(7)
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]

    def frames() -> Iterator[Rgb]:
        for index in range(round(seconds * fps)):
            phase = index / fps
            red = 0.5 + 0.5 * np.sin(2 * np.pi * (xs + phase / 4)) * np.ones_like(ys)
            green = 0.5 + 0.5 * np.sin(2 * np.pi * (ys + xs / 2 - phase / 5))
            blue = np.broadcast_to(0.5 + 0.4 * np.cos(2 * np.pi * ys), red.shape)
            rgb = np.stack([red, green, blue], axis=-1) * 220 + rng.normal(0, 4, (height, width, 3))
            yield np.clip(rgb, 0, 255).astype(np.uint8)

    return _encode(path, frames(), size, fps, "libx264")


def audio_file(path: Path, audio: Audio, sample_rate: int) -> Path:
    """An M4A (AAC) file: media with sound and no video stream."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def corrupt_file(path: Path, size: int = 64_000) -> Path:
    """Random bytes under a video's name."""
    path.write_bytes(np.random.default_rng(3).bytes(size))
    return path


@cache
def _piper() -> PiperEngine:
    engine = PiperEngine.bundled()
    engine.load()
    return engine


@cache
def _phrases_audio(phrases: tuple[str, ...], pause: float) -> tuple[bytes, int]:
    engine = _piper()
    gap = np.zeros(round(pause * engine.sample_rate), dtype=np.float32)
    parts = [gap]
    # No sampling noise: the same speech every time, in every process.
    options = SynthesisOptions(voice="en_US-joe-medium", noise_scale=0.0, noise_w=0.0)
    for phrase in phrases:
        parts.extend(engine.synthesize(phrase, options))
        parts.append(gap)
    return np.concatenate(parts).tobytes(), engine.sample_rate


def speech(
    seconds: float, phrases: tuple[str, ...] = PHRASES, pause: float = PAUSE_SECONDS
) -> tuple[Audio, int]:
    """Piper speaking separate words and phrases with ``pause`` s of silence between them, cut (or
    padded with silence) to ``seconds``; returns (samples, sample rate)."""
    raw, rate = _phrases_audio(phrases, pause)
    audio = np.frombuffer(raw, dtype=np.float32)
    wanted = round(seconds * rate)
    return np.pad(audio[:wanted], (0, max(0, wanted - audio.size))).astype(np.float32), rate


def decode_rgb(path: Path, upright: bool = False) -> Iterator[Rgb]:
    """The frames of the first video stream, as RGB arrays: as stored, or ``upright`` (turned by
    the stream's display rotation, as a player shows them)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            yield np.ascontiguousarray(np.rot90(rgb, frame.rotation // 90)) if upright else rgb

"""CPU lip sync ("mouth-warp"): a video's mouth opens and closes with the loudness of the speech.

For each output frame the engine decodes the next input frame (looping the video when the audio is
longer), finds the largest face with MediaPipe's face mesh, and opens its mouth by an amount that
follows the speech band's loudness around that frame's time (``mouth_drive``), by warping the lower
lip and jaw (``mouth_warp``). Frames are warped in their decoded YUV 4:2:0 planes, so every pixel
outside the lower face keeps its exact decoded value, and streamed one at a time into libx264, with
the audio in AAC beside them: memory does not grow with the video's length.

H.264 in 4:2:0 cannot carry odd widths or heights; such videos lose their last column or row. A
video that is displayed rotated (phones record upright video as landscape frames plus a rotation)
keeps its frames and its rotation; only the face mesh's copy is turned upright.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from openfish.engines.base import Audio, EngineError, LipSyncInputError, LipSyncReport
from openfish.engines.face_mesh import FaceTracker, face_mesh_available
from openfish.engines.lipsync_video import (
    AudioWriter,
    VideoInfo,
    aac_rate,
    copy_planes,
    encode_frame,
    looped_frames,
    probe_video,
)
from openfish.engines.mouth_drive import mouth_drive
from openfish.engines.mouth_warp import MouthGeometry, warp_mouth

NAME = "mouth-warp"
DEFAULT_MAX_PIXELS = 1920 * 1080
#: Mouth opening at full loudness, as a fraction of the face's height (forehead to chin).
DEFAULT_OPENING = 0.08
#: The face mesh looks at an RGB copy of the frame no larger than this on its longer side: its
#: models work at 192 px anyway, and the copy's cost grows with its size.
ANALYSIS_MAX_SIDE = 1280
PROGRESS_EVERY = 25
#: libx264: fast, visually transparent, and every H.264 decoder can play yuv420p.
X264_OPTIONS = {"preset": "veryfast", "crf": "20"}
AUDIO_BIT_RATE = 128_000
#: Frames of audio handed to the AAC encoder at a time (about a second at 25 fps).
AUDIO_CHUNK_FRAMES = 25

NO_FACE = "no face found in the video"


class MouthWarpEngine:
    """Lip sync by warping the lower face; CPU only, about 15 ms per 480p frame."""

    name = NAME

    def __init__(self, *, max_pixels: int = DEFAULT_MAX_PIXELS, opening: float = DEFAULT_OPENING) -> None:
        self._max_pixels = max_pixels
        self._opening = opening
        self._lock = threading.Lock()
        self._loaded = False

    @staticmethod
    def available() -> bool:
        """Whether MediaPipe is installed (cheap: nothing is imported)."""
        return face_mesh_available()

    @property
    def loaded(self) -> bool:
        """Whether the face-mesh models have been loaded once (and so are known to work)."""
        return self._loaded

    def load(self) -> None:
        """Import MediaPipe and build a face mesh once, so a broken install fails at start."""
        with self._lock:
            if self._loaded:
                return
            try:
                FaceTracker().close()
            except (ImportError, RuntimeError, OSError) as err:
                raise EngineError(f"the face mesh could not be loaded: {err}") from err
            self._loaded = True

    def sync(
        self,
        video: Path,
        audio: Audio,
        sample_rate: int,
        output: Path,
        *,
        progress: Callable[[float], None],
    ) -> LipSyncReport:
        """Write ``video`` with its mouth following ``audio`` to ``output`` (MP4, H.264 + AAC), as
        long as the audio: a shorter video loops from its start, a longer one is cut."""
        self.load()
        samples = _checked_audio(audio, sample_rate)
        info = probe_video(video, self._max_pixels)
        duration = samples.size / sample_rate
        frames = max(1, round(duration * info.rate))
        drive = mouth_drive(samples, sample_rate, float(info.rate), frames)
        try:
            with_face = self._render(video, info, samples, sample_rate, drive, output, progress)
        except BaseException:
            output.unlink(missing_ok=True)
            raise
        progress(1.0)
        width, height = info.width & ~1, info.height & ~1
        if info.turns % 2:
            width, height = height, width  # the size as displayed
        return LipSyncReport(
            frames=frames,
            frames_with_face=with_face,
            duration=max(duration, frames / float(info.rate)),
            width=width,
            height=height,
            fps=float(info.rate),
        )

    def _render(
        self,
        video: Path,
        info: VideoInfo,
        samples: Audio,
        sample_rate: int,
        drive: npt.NDArray[np.float32],
        output: Path,
        progress: Callable[[float], None],
    ) -> int:
        """Encode every output frame; returns how many had a face."""
        width, height = info.width & ~1, info.height & ~1
        buffer = np.empty(height * width * 3 // 2, dtype=np.uint8)
        y = buffer[: height * width].reshape(height, width)
        u = buffer[height * width : height * width * 5 // 4].reshape(height // 2, width // 2)
        v = buffer[height * width * 5 // 4 :].reshape(height // 2, width // 2)
        scale = min(1.0, ANALYSIS_MAX_SIDE / max(width, height))
        analysis = (max(2, round(width * scale)), max(2, round(height * scale)))
        with_face = 0
        frames = drive.size
        try:
            with (
                av.open(str(output), mode="w", format="mp4", options={"movflags": "+faststart"}) as container,
                FaceTracker() as tracker,
                closing(looped_frames(video)) as source,
            ):
                video_out = container.add_stream("libx264", rate=info.rate, options=X264_OPTIONS)
                video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
                if info.rotation:
                    video_out.set_display_rotation(info.rotation)
                audio_out = container.add_stream("aac", rate=aac_rate(sample_rate), layout="mono")
                audio_out.bit_rate = AUDIO_BIT_RATE
                writer = AudioWriter(container, audio_out, samples, sample_rate)
                for index in range(frames):
                    frame, lap = next(source)
                    if lap > 0 and with_face == 0:
                        raise LipSyncInputError(NO_FACE)  # a whole pass of the video without one
                    copy_planes(frame, y, u, v)
                    face = tracker.largest_face(
                        _analysis_copy(buffer.reshape(-1, width), analysis, info.turns)
                    )
                    if face is not None:
                        face = _unturn(face, info.turns)
                        with_face += 1
                        geometry = MouthGeometry.from_landmarks(face * (width, height))
                        if geometry is not None and drive[index] > 0:
                            opening = float(drive[index]) * self._opening * geometry.face_height
                            warp_mouth(y, u, v, geometry, opening)
                    encode_frame(container, video_out, buffer.reshape(-1, width), index, 1 / info.rate)
                    if (index + 1) % AUDIO_CHUNK_FRAMES == 0:
                        writer.write_until(int((index + 1) / info.rate * sample_rate))
                    if (index + 1) % PROGRESS_EVERY == 0:
                        progress((index + 1) / (frames + 1))
                if with_face == 0:
                    raise LipSyncInputError(NO_FACE)
                for packet in video_out.encode(None):
                    container.mux(packet)
                writer.finish()
        except av.FFmpegError as err:
            raise EngineError(f"encoding the lip-synced video failed: {err}") from err
        return with_face


def _checked_audio(audio: Audio, sample_rate: int) -> Audio:
    if sample_rate <= 0:
        raise LipSyncInputError("the audio's sample rate must be positive")
    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1))
    if samples.size == 0:
        raise LipSyncInputError("the audio is empty")
    return np.clip(samples, -1, 1)


def _analysis_copy(planes: npt.NDArray[np.uint8], size: tuple[int, int], turns: int) -> npt.NDArray[np.uint8]:
    """An RGB copy of a 4:2:0 frame for the face mesh: shrunk to ``size`` if it is larger, and
    turned upright (the mesh finds faces that are upright, not ones lying on their side)."""
    rgb = np.asarray(cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420), dtype=np.uint8)
    if rgb.shape[1] != size[0]:
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, turns))
    return rgb


def _unturn(points: npt.NDArray[np.float32], turns: int) -> npt.NDArray[np.float32]:
    """Landmarks (fractions of the frame) found in a copy turned ``turns`` quarter turns
    counter-clockwise, as fractions of the frame as coded."""
    for _ in range(turns):
        # A quarter turn took the coded point (x, y) to (y, 1 - x); undo one.
        points = np.stack([1 - points[:, 1], points[:, 0]], axis=1)
    return points

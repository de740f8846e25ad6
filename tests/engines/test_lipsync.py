"""The mouth-warp lip-sync engine on real media: a moving face (scikit-image's astronaut) made to
speak Piper speech with pauses, checked by decoding the output and measuring its mouth with the face
mesh."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from openfish.config import Settings
from openfish.engines.base import Audio, LipSyncEngine, LipSyncInputError, LipSyncReport
from openfish.engines.face_mesh import FaceTracker
from openfish.engines.lipsync import MouthWarpEngine
from openfish.engines.mouth_drive import mouth_drive
from openfish.engines.mouth_warp import MouthGeometry, warp_mouth
from openfish.engines.registry import build_engines
from tests.lipsync_checks import best_lag, envelope, mouth_openings
from tests.media_clips import (
    astronaut,
    audio_file,
    corrupt_file,
    decode_rgb,
    face_image,
    face_video,
    faceless_video,
    speech,
)

FPS = 25
SIZE = (854, 480)
#: Mean absolute difference (0-255) that re-encoding alone leaves on the textured photo: measured
#: 1.0-1.7 per frame, the same in silent and in loud frames (the open mouth's box: 7-13).
CODEC_NOISE = 2.5


@dataclass
class Render:
    """One lip-sync run: its inputs, output and what it reported."""

    video: Path
    output: Path
    audio: Audio
    rate: int
    report: LipSyncReport
    progress: list[float]


def render(engine: MouthWarpEngine, folder: Path, video_seconds: float, audio_seconds: float) -> Render:
    video = face_video(folder / "face.mp4", video_seconds, fps=FPS, size=SIZE)
    audio, rate = speech(audio_seconds)
    output = folder / "synced.mp4"
    progress: list[float] = []
    report = engine.sync(video, audio, rate, output, progress=progress.append)
    return Render(video, output, audio, rate, report, progress)


@pytest.fixture(scope="module")
def engine() -> MouthWarpEngine:
    built = MouthWarpEngine()
    built.load()
    return built


@pytest.fixture(scope="module")
def looped(engine: MouthWarpEngine, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Audio longer than the video: the video loops."""
    return render(engine, tmp_path_factory.mktemp("looped"), video_seconds=2.0, audio_seconds=3.4)


@pytest.fixture(scope="module")
def cut(engine: MouthWarpEngine, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Audio shorter than the video: the video is cut."""
    return render(engine, tmp_path_factory.mktemp("cut"), video_seconds=4.0, audio_seconds=2.6)


@pytest.fixture(params=["looped", "cut"])
def rendered(request: pytest.FixtureRequest) -> Render:
    result: Render = request.getfixturevalue(request.param)
    return result


Box = tuple[int, int, int, int]


def looped_input(video: Path) -> Iterator[tuple[npt.NDArray[np.uint8], Box]]:
    """The input's frames as the engine loops them, each with a generous box (x0, y0, x1, y1)
    around its mouth, jaw and chin."""
    while True:
        with FaceTracker() as tracker:
            for rgb in decode_rgb(video):
                face = tracker.largest_face(rgb)
                assert face is not None
                p = face * (rgb.shape[1], rgb.shape[0])
                margin = 0.05 * np.hypot(*(p[10] - p[152]))
                seam = (p[13, 1] + p[14, 1]) / 2
                chin = p[152, 1]
                box = (
                    int(p[58, 0] - margin),
                    int(min(p[0, 1], p[61, 1], p[291, 1]) - margin),
                    int(p[288, 0] + margin),
                    int(chin + (chin - seam) + margin),
                )
                yield rgb, box


def test_output_streams_size_rate_and_length(rendered: Render) -> None:
    duration = rendered.audio.size / rendered.rate
    frames = round(duration * FPS)
    report = rendered.report
    assert (report.frames, report.frames_with_face, report.width, report.height) == (frames, frames, *SIZE)
    assert report.fps == FPS
    assert report.duration == pytest.approx(duration, abs=0.5 / FPS)
    with av.open(str(rendered.output)) as container:
        assert len(container.streams) == 2
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == SIZE
        assert video.average_rate == Fraction(FPS)
        assert audio.codec_context.name == "aac"
        assert audio.channels == 1
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(duration, abs=0.06)
        audio_seconds = sum(frame.samples / frame.sample_rate for frame in container.decode(audio))
    assert audio_seconds == pytest.approx(duration, abs=0.06)
    assert sum(1 for _ in decode_rgb(rendered.output)) == frames


def test_only_the_lower_face_changes(rendered: Render) -> None:
    drive = mouth_drive(rendered.audio, rendered.rate, FPS, rendered.report.frames)
    inside_loud, inside_quiet = [], []
    outputs = zip(decode_rgb(rendered.output), looped_input(rendered.video), strict=False)
    for index, (output, (source, (x0, y0, x1, y1))) in enumerate(outputs):
        difference = np.abs(output.astype(np.int16) - source.astype(np.int16)).mean(axis=2)
        inside = difference[y0:y1, x0:x1].mean()
        difference[y0:y1, x0:x1] = 0
        outside = difference.sum() / (difference.size - (y1 - y0) * (x1 - x0))
        assert outside < CODEC_NOISE, f"frame {index}: the frame changed outside the lower face"
        if drive[index] > 0.7:
            inside_loud.append(inside)
        elif drive[index] == 0:
            inside_quiet.append(inside)
            assert inside < 2 * CODEC_NOISE, f"frame {index}: the mouth moved in silence"
    assert inside_loud
    assert inside_quiet
    assert np.mean(inside_loud) > 2 * CODEC_NOISE
    assert np.mean(inside_loud) > 3 * np.mean(inside_quiet)


def test_the_mouth_follows_the_speech(rendered: Render) -> None:
    openings = mouth_openings(rendered.output)
    loudness = envelope(rendered.audio, rendered.rate, len(openings))
    score, lag = best_lag(openings, loudness)
    assert score > 0.6
    assert abs(lag) <= 1
    # The input's own mouth does not move with the speech (measured r: 0.24 and 0.09, from the
    # face's drift, against 0.92 and 0.94 for the output): the correlation is the engine's doing.
    still = np.resize(mouth_openings(rendered.video), len(openings))
    assert np.corrcoef(still, loudness)[0, 1] < score - 0.4


def test_progress_rises_to_one(rendered: Render) -> None:
    progress = rendered.progress
    assert progress[-1] == 1.0
    assert progress == sorted(progress)
    assert all(0 < fraction <= 1 for fraction in progress)
    assert len(progress) >= rendered.report.frames // 25


def test_silence_leaves_the_video_as_it_was(engine: MouthWarpEngine, tmp_path: Path) -> None:
    video = face_video(tmp_path / "face.mp4", 1.0, fps=FPS, size=(640, 360))
    report = engine.sync(
        video, np.zeros(16000, np.float32), 16000, tmp_path / "out.mp4", progress=lambda _: None
    )
    assert (report.frames, report.frames_with_face) == (FPS, FPS)
    for before, after in zip(decode_rgb(video), decode_rgb(tmp_path / "out.mp4"), strict=True):
        assert np.abs(after.astype(np.int16) - before.astype(np.int16)).mean() < CODEC_NOISE


def test_odd_sizes_lose_their_last_row_and_column(engine: MouthWarpEngine, tmp_path: Path) -> None:
    video = face_video(tmp_path / "odd.mkv", 1.0, fps=30, size=(481, 271))
    audio, rate = speech(1.0)
    report = engine.sync(video, audio, rate, tmp_path / "out.mp4", progress=lambda _: None)
    assert (report.width, report.height, report.fps, report.frames) == (480, 270, 30.0, 30)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (480, 270)
        assert stream.average_rate == 30


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_video_keeps_its_rotation(engine: MouthWarpEngine, tmp_path: Path, rotation: int) -> None:
    """Phones store upright video as landscape frames plus a rotation: the face is found all the
    same, and the output is shown the same way as the input."""
    video = face_video(tmp_path / "phone.mp4", 2.0, fps=FPS, size=(270, 480), rotation=rotation)
    audio, rate = speech(2.0)
    report = engine.sync(video, audio, rate, tmp_path / "out.mp4", progress=lambda _: None)
    assert (report.width, report.height, report.frames, report.frames_with_face) == (270, 480, 50, 50)
    with av.open(str(tmp_path / "out.mp4")) as container:
        first = next(container.decode(video=0))
        assert (first.width, first.height, first.rotation % 360) == (480, 270, rotation)
    openings = mouth_openings(tmp_path / "out.mp4")
    drive = mouth_drive(audio, rate, FPS, report.frames)
    assert openings[drive > 0.7].mean() > openings[drive == 0].mean() + 0.02


def test_a_photo_speaks(engine: MouthWarpEngine, tmp_path: Path) -> None:
    """A still image is a video of one frame: it is repeated for as long as the audio lasts."""
    audio, rate = speech(2.0)
    report = engine.sync(
        face_image(tmp_path / "photo.png"), audio, rate, tmp_path / "out.mp4", progress=lambda _: None
    )
    assert (report.width, report.height, report.frames, report.frames_with_face) == (640, 360, 50, 50)
    openings = mouth_openings(tmp_path / "out.mp4")
    drive = mouth_drive(audio, rate, FPS, report.frames)
    assert openings[drive > 0.7].mean() > openings[drive == 0].mean() + 0.02


def test_a_video_without_a_face_is_refused(engine: MouthWarpEngine, tmp_path: Path) -> None:
    video = faceless_video(tmp_path / "gradient.mp4", 1.0)
    audio, rate = speech(2.5)  # longer than the video: refused after one pass, not at the end
    with pytest.raises(LipSyncInputError, match="no face found in the video"):
        engine.sync(video, audio, rate, tmp_path / "out.mp4", progress=lambda _: None)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: corrupt_file(folder / "random.mp4"), "could not be read"),
        (lambda folder: audio_file(folder / "speech.m4a", *speech(1.0)), "no video stream"),
        (lambda folder: face_video(folder / "big.mp4", 0.2, size=(854, 480)), "at most 307200 pixels"),
    ],
    ids=["corrupt", "audio-only", "too-large"],
)
def test_unusable_media_is_refused(make: Callable[[Path], Path], message: str, tmp_path: Path) -> None:
    video = make(tmp_path)
    engine = MouthWarpEngine(max_pixels=640 * 480)
    audio, rate = speech(1.0)
    with pytest.raises(LipSyncInputError, match=message):
        engine.sync(video, audio, rate, tmp_path / "out.mp4", progress=lambda _: None)
    assert not (tmp_path / "out.mp4").exists()


def test_empty_audio_is_refused(engine: MouthWarpEngine, tmp_path: Path) -> None:
    video = face_video(tmp_path / "face.mp4", 0.2, size=(320, 240))
    with pytest.raises(LipSyncInputError, match="audio is empty"):
        engine.sync(video, np.zeros(0, np.float32), 16000, tmp_path / "out.mp4", progress=lambda _: None)


def test_the_warp_touches_only_the_lower_face() -> None:
    """Before encoding: pixels above the lips' seam and outside the warp's box keep their values."""
    image = astronaut()
    with FaceTracker() as tracker:
        face = tracker.largest_face(image)
    assert face is not None
    geometry = MouthGeometry.from_landmarks(face * 512)
    assert geometry is not None
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    planes = np.asarray(frame.to_ndarray(), dtype=np.uint8)
    before = planes.copy()
    y, u, v = planes[:512], planes[512:640].reshape(256, 256), planes[640:].reshape(256, 256)
    opening = 0.1 * geometry.face_height
    assert warp_mouth(y, u, v, geometry, opening)
    changed_rows, changed_cols = np.nonzero(y != before[:512])
    x0, y0, x1, y1 = geometry.box(opening)
    assert changed_rows.size > 100
    assert x0 - 2 <= changed_cols.min()
    assert changed_cols.max() <= x1 + 2
    assert y0 - 2 <= changed_rows.min()
    assert changed_rows.max() <= y1 + 2
    # Nothing above the upper lip's inner edge moves.
    assert changed_rows.min() >= face[13, 1] * 512 - 2
    assert not warp_mouth(y, u, v, geometry, 0.0)


def test_drive_is_closed_in_silence_and_open_in_speech() -> None:
    audio, rate = speech(3.0)
    drive = mouth_drive(audio, rate, FPS, 3 * FPS)
    assert drive.shape == (3 * FPS,)
    assert drive.min() >= 0
    assert drive.max() <= 1
    assert drive.max() > 0.9
    loudness = envelope(audio, rate, 3 * FPS)
    assert np.all(drive[loudness <= loudness.max() - 30] == 0)
    assert np.corrcoef(drive, loudness)[0, 1] > 0.8
    assert not mouth_drive(np.zeros(rate, np.float32), rate, FPS, FPS).any()


def test_the_registry_offers_the_engine(tmp_path: Path) -> None:
    registry = build_engines(Settings(data_dir=tmp_path))
    engine = registry.lipsync("mouth-warp")
    assert isinstance(engine, LipSyncEngine)
    assert registry.lipsync_engines() == [engine]
    assert registry.lipsync("wav2lip") is None

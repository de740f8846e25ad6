"""Measurements of lip-synced video used by the tests and the benchmark: loudness per frame, mouth
opening per frame (by face mesh), and the lag at which they correlate best."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from openfish.engines.base import Audio
from openfish.engines.face_mesh import FaceTracker
from tests.media_clips import decode_rgb


def envelope(audio: Audio, rate: int, frames: int, fps: int = 25) -> npt.NDArray[np.float64]:
    """Loudness (dB, floored 30 dB under the peak) over two frames around each frame's middle:
    measured independently of the engine's speech-band drive."""
    half = rate // fps
    levels = []
    for index in range(frames):
        centre = round((index + 0.5) / fps * rate)
        window = audio[max(0, centre - half) : centre + half].astype(np.float64)
        levels.append(10 * np.log10(np.mean(window * window) + 1e-10))
    loudness = np.array(levels, dtype=np.float64)
    return np.asarray(np.maximum(loudness, loudness.max() - 30), dtype=np.float64)


def mouth_openings(path: Path) -> npt.NDArray[np.float64]:
    """Inner-lip distance (landmarks 13-14) over face height (10-152) in each frame as displayed,
    by face mesh."""
    openings = []
    with FaceTracker() as tracker:
        for rgb in decode_rgb(path, upright=True):
            face = tracker.largest_face(rgb)
            assert face is not None
            points = face * (rgb.shape[1], rgb.shape[0])
            openings.append(np.hypot(*(points[13] - points[14])) / np.hypot(*(points[10] - points[152])))
    return np.array(openings)


def best_lag(openings: npt.NDArray[np.float64], loudness: npt.NDArray[np.float64]) -> tuple[float, int]:
    """The highest Pearson correlation of mouth opening with loudness over lags of -3..3 frames,
    and its lag (positive: the mouth comes after the sound)."""
    scores = {}
    for lag in range(-3, 4):
        mouth = openings[max(lag, 0) : len(openings) + min(lag, 0)]
        sound = loudness[max(-lag, 0) : len(loudness) - max(lag, 0)]
        scores[lag] = float(np.corrcoef(mouth, sound)[0, 1])
    lag = max(scores, key=lambda key: scores[key])
    return scores[lag], lag

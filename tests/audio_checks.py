"""Measurements of real audio used by the tests: level and pitch."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyworld

Samples = npt.NDArray[np.float32]


def rms_db(samples: Samples) -> float:
    """Root-mean-square level in dBFS."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples))) + 1e-12))


def mean_f0(samples: Samples, sample_rate: int, low: float = 60.0, high: float = 500.0) -> float:
    """Median fundamental frequency of the voiced frames (WORLD's harvest, which rarely jumps octaves)."""
    f0, _times = pyworld.harvest(
        samples.astype(np.float64), sample_rate, f0_floor=low, f0_ceil=high, frame_period=10
    )
    voiced = f0[f0 > 0]
    assert voiced.size, "no voiced frames found"
    return float(np.median(voiced))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over reference length, ignoring case and punctuation."""

    def words(text: str) -> list[str]:
        return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()

    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, expected in enumerate(ref, 1):
        current = [i]
        for j, heard in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (expected != heard)))
        previous = current
    return previous[-1] / max(1, len(ref))

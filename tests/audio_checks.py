"""Measurements of real audio used by the tests: level and pitch."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


def rms_db(samples: Samples) -> float:
    """Root-mean-square level in dBFS."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples))) + 1e-12))


def mean_f0(samples: Samples, sample_rate: int, low: float = 60.0, high: float = 400.0) -> float:
    """Mean fundamental frequency of voiced 40 ms frames, by autocorrelation."""
    frame = int(0.04 * sample_rate)
    hop = frame // 2
    shortest, longest = int(sample_rate / high), int(sample_rate / low)
    estimates: list[float] = []
    loud = np.sqrt(np.mean(np.square(samples))) * 0.5
    for start in range(0, samples.size - frame, hop):
        window = samples[start : start + frame] * np.hanning(frame)
        if np.sqrt(np.mean(np.square(window))) < loud:
            continue
        correlation = np.correlate(window, window, mode="full")[frame - 1 :]
        lag = shortest + int(np.argmax(correlation[shortest:longest]))
        if correlation[lag] > 0.5 * correlation[0]:
            estimates.append(sample_rate / lag)
    assert estimates, "no voiced frames found"
    return float(np.median(estimates))

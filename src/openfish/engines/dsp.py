"""Small signal-processing helpers engines share."""

from __future__ import annotations

import numpy as np

from openfish.engines.base import Audio


def shift_pitch_by_resampling(audio: Audio, ratio: float) -> Audio:
    """Play ``audio`` ``ratio`` times faster: pitch × ratio, duration ÷ ratio.

    Engines that cannot shift pitch themselves synthesize ``ratio`` times slower first, so the
    duration comes back to normal and only the pitch moves.
    """
    if ratio == 1.0 or audio.size < 2:
        return audio
    positions = np.arange(0.0, audio.size - 1, ratio)
    shifted: Audio = np.interp(positions, np.arange(audio.size), audio).astype(np.float32)
    return shifted

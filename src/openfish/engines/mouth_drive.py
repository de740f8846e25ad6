"""How far a mouth should be open in each video frame, from the loudness of the speech."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from openfish.engines.base import Audio

#: The mouth follows the loudness of the band where speech has most of its energy.
SPEECH_BAND_HZ = (250.0, 4000.0)
#: Frames whose speech band is quieter than this (dB full scale; a full-scale sine reads -3) are silence.
SILENCE_DB = -55.0
#: Loudness is mapped to 0..1 from this far below the loud (95th percentile) level up to it...
RANGE_DB = 30.0
#: ...or from the quiet (10th percentile) level when that is higher, but over at least this range.
MIN_RANGE_DB = 12.0


def mouth_drive(audio: Audio, sample_rate: int, fps: float, frames: int) -> npt.NDArray[np.float32]:
    """How far the mouth should be open (0..1) in each of ``frames`` video frames at ``fps``.

    The loudness of the speech band (250 Hz-4 kHz) in a Hann window two frames long, centred on the
    middle of each frame, in dB; mapped from a floor (30 dB under the loud level, or the quiet level
    when the audio has no real silence) up to the loud level; 0 where the audio is silent.
    """
    window = max(16, round(2 * sample_rate / fps))
    size = 1 << (window - 1).bit_length()
    taper = np.hanning(window).astype(np.float32)
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
    # Parseval: mean square of the band-limited windowed signal, so a full-scale sine reads -3 dB.
    norm = 2.0 / (size * float(np.sum(taper * taper)))
    padded = np.concatenate([np.zeros(window, np.float32), audio, np.zeros(window, np.float32)])
    centres = np.minimum(((np.arange(frames) + 0.5) / fps * sample_rate).astype(np.int64), audio.size)
    offsets = np.arange(window) + window - window // 2
    power = np.empty(frames, dtype=np.float64)
    for start in range(0, frames, 256):  # in blocks: a long audio's whole STFT would not fit
        segments = padded[centres[start : start + 256, None] + offsets] * taper
        spectrum = np.fft.rfft(segments, n=size, axis=1)[:, band]
        power[start : start + 256] = np.sum(np.abs(spectrum) ** 2, axis=1) * norm
    level = 10 * np.log10(power + 1e-12)
    voiced = level > SILENCE_DB
    if not voiced.any():
        return np.zeros(frames, dtype=np.float32)
    loud = float(np.percentile(level[voiced], 95))
    floor = min(max(float(np.percentile(level, 10)), loud - RANGE_DB), loud - MIN_RANGE_DB)
    opening = np.where(voiced, np.clip((level - floor) / (loud - floor), 0, 1), 0)
    # A light, symmetric smoothing (less flutter, no delay) that does not spill into silence.
    smoothed = np.convolve(np.pad(opening, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return np.where(opening > 0, smoothed, 0).astype(np.float32)

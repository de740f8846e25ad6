"""Changing the sample rate of mono float audio (FFmpeg's resampler through PyAV)."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """``samples`` at ``to_rate``; the same array when the rates already match."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = from_rate
    parts = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def resample_exact(audio: Samples, rate_in: int, rate_out: int) -> Samples:
    """``audio`` at ``rate_out`` with exactly ``len * rate_out / rate_in`` samples, by band-limited
    (FFT) resampling: for clips of seconds that must keep their length to the sample. Long
    recordings go through :func:`resample` (streaming, bounded memory)."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError("sample rates must be positive")
    samples = np.asarray(audio, dtype=np.float64).reshape(-1)
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32)
    size_out = max(1, round(samples.size * rate_out / rate_in))
    spectrum = np.fft.rfft(samples)
    keep = min(spectrum.size, size_out // 2 + 1)
    resized = np.zeros(size_out // 2 + 1, dtype=np.complex128)
    resized[:keep] = spectrum[:keep]
    out = np.fft.irfft(resized, n=size_out) * (size_out / samples.size)
    return out.astype(np.float32)


def speech_seconds(samples: Samples, sample_rate: int) -> float:
    """Seconds of ``samples`` that carry sound: 30 ms frames within 35 dB of the loudest frame
    and above -50 dBFS (a plain energy gate; enough to tell speech from silence or hiss)."""
    frame = max(1, int(0.03 * sample_rate))
    usable = samples[: samples.size - samples.size % frame]
    if usable.size == 0:
        return 0.0
    levels = 10 * np.log10(np.mean(np.square(usable.reshape(-1, frame)), axis=1) + 1e-12)
    threshold = max(-50.0, float(levels.max()) - 35.0)
    return float(np.count_nonzero(levels > threshold)) * frame / sample_rate


class StreamResampler:
    """Resamples one stream of mono float audio that arrives in pieces, without seams between them
    (the filter's state carries over); ``flush`` returns what it still holds at the end."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self._from_rate = from_rate
        self._resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=to_rate) if from_rate != to_rate else None
        )
        self._pts = 0

    def process(self, samples: Samples) -> Samples:
        """The resampled audio ready so far."""
        if self._resampler is None or samples.size == 0:
            return samples.astype(np.float32, copy=False)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = self._from_rate
        frame.pts = self._pts
        self._pts += samples.size
        return self._joined(self._resampler.resample(frame))

    def flush(self) -> Samples:
        """The rest of the output (end of stream)."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._joined(self._resampler.resample(None))

    @staticmethod
    def _joined(frames: list[av.AudioFrame]) -> Samples:
        parts = [out.to_ndarray().reshape(-1) for out in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)

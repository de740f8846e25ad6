"""Tempo and pitch changes on a stream of audio, through FFmpeg's filters (PyAV).

``asetrate`` + ``aresample`` moves the pitch (and the tempo with it); ``atempo`` then sets the
tempo exactly without touching the pitch. Engines' own rate controls are not proportional (Piper
at length_scale 0.5 is only ~1.6x faster), so exact tempo is done here for every engine.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import av.filter
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
#: atempo accepts 0.5-100 per instance; larger changes are chained.
_ATEMPO_RANGE = (0.5, 2.0)


def _atempo_factors(tempo: float) -> list[float]:
    factors: list[float] = []
    low, high = _ATEMPO_RANGE
    while tempo < low or tempo > high:
        step = low if tempo < low else high
        factors.append(step)
        tempo /= step
    factors.append(tempo)
    return factors


class TempoPitch:
    """A stateful tempo/pitch changer for one stream of mono float audio."""

    def __init__(self, sample_rate: int, tempo: float = 1.0, pitch_semitones: float = 0.0) -> None:
        if tempo <= 0:
            raise ValueError("tempo must be positive")
        self.sample_rate = sample_rate
        self.active = abs(tempo - 1.0) > 1e-6 or abs(pitch_semitones) > 1e-6
        self._graph: av.filter.Graph | None = None
        self._pts = 0
        if not self.active:
            return
        ratio = 2.0 ** (pitch_semitones / 12.0)
        graph = av.filter.Graph()
        source = graph.add_abuffer(
            sample_rate=sample_rate, format="flt", layout="mono", time_base=Fraction(1, sample_rate)
        )
        chain = [source]
        if abs(ratio - 1.0) > 1e-6:
            chain.append(graph.add("asetrate", f"{round(sample_rate * ratio)}"))
            chain.append(graph.add("aresample", f"{sample_rate}"))
        for factor in _atempo_factors(tempo / ratio):
            chain.append(graph.add("atempo", f"{factor:.6f}"))
        chain.append(graph.add("aformat", f"sample_fmts=flt:channel_layouts=mono:sample_rates={sample_rate}"))
        chain.append(graph.add("abuffersink"))
        for upstream, downstream in itertools.pairwise(chain):
            upstream.link_to(downstream)
        graph.configure()
        self._graph = graph

    def process(self, samples: Samples) -> Samples:
        """Feed audio in; returns whatever output is ready (possibly empty)."""
        if self._graph is None or samples.size == 0:
            return samples
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += samples.size
        self._graph.push(frame)
        return self._drain()

    def flush(self) -> Samples:
        """End of input: returns the rest of the output."""
        if self._graph is None:
            return np.zeros(0, dtype=np.float32)
        self._graph.push(None)
        return self._drain()

    def _drain(self) -> Samples:
        assert self._graph is not None
        parts: list[Samples] = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            parts.append(frame.to_ndarray().reshape(-1).astype(np.float32))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

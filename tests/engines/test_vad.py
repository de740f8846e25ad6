"""Silero VAD on real audio: speech scores high, silence and faint noise low, state carries over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from openfish.audio.decode import decode_audio
from openfish.audio.resample import resample
from openfish.engines.base import Audio, EngineError, VadEngine
from openfish.engines.registry import EngineRegistry
from openfish.engines.vad import WINDOW, SileroVad
from tests.voice_clips import espeak_wav

RATE = 16_000


def speech(text: str = "Please send the report to my office before noon.") -> Audio:
    """``text`` spoken by espeak-ng at 16 kHz, cut to whole VAD windows."""
    decoded = decode_audio(espeak_wav(text, "en-us", 50))
    samples = resample(decoded.samples, decoded.sample_rate, RATE)
    return samples[: samples.size - samples.size % WINDOW]


@pytest.fixture
def vad(engines: EngineRegistry) -> VadEngine:
    assert engines.vad is not None
    return engines.vad


def test_registry_runs_silero(engines: EngineRegistry) -> None:
    vad = engines.vad
    assert isinstance(vad, SileroVad)
    assert isinstance(vad, VadEngine)
    assert vad.name == "silero"
    assert vad.window == WINDOW
    assert vad.loaded  # load_all() loaded it with the transcribers


def test_speech_scores_high_and_silence_and_faint_noise_low(vad: VadEngine) -> None:
    spoken = vad.stream().probabilities(speech())
    assert max(spoken) > 0.9
    # espeak leaves short gaps between words; most windows of the sentence are still speech.
    assert np.mean(np.array(spoken) >= 0.5) > 0.6

    silence = vad.stream().probabilities(np.zeros(WINDOW * 64, dtype=np.float32))
    assert max(silence) < 0.1
    noise = (np.random.default_rng(7).standard_normal(WINDOW * 64) * 0.003).astype(
        np.float32
    )  # about -50 dBFS
    assert max(vad.stream().probabilities(noise)) < 0.2


def test_state_carries_over_between_calls(vad: VadEngine) -> None:
    audio = np.concatenate([np.zeros(WINDOW * 16, dtype=np.float32), speech()])
    one_shot = vad.stream().probabilities(audio)
    assert len(one_shot) == audio.size // WINDOW

    stream, chunked = vad.stream(), []
    sizes = np.random.default_rng(3).integers(1, 9, size=audio.size // WINDOW)
    start = 0
    for windows in sizes:
        chunked += stream.probabilities(audio[start : start + int(windows) * WINDOW])
        start += int(windows) * WINDOW
    window_by_window = vad.stream()
    single = [
        p for i in range(0, audio.size, WINDOW) for p in window_by_window.probabilities(audio[i : i + WINDOW])
    ]
    np.testing.assert_allclose(chunked, one_shot, atol=1e-5)
    np.testing.assert_allclose(single, one_shot, atol=1e-5)
    # faster-whisper's own batched call (which mutates its input, hence the copy) agrees too.
    reference = get_vad_model()(audio.copy()).reshape(-1)
    np.testing.assert_allclose(one_shot, reference, atol=1e-5)


def test_streams_are_independent(vad: VadEngine) -> None:
    audio = speech()
    first, second = vad.stream(), vad.stream()
    first.probabilities(audio)  # changes only ``first``'s state
    np.testing.assert_allclose(
        second.probabilities(audio[: WINDOW * 20]), vad.stream().probabilities(audio[: WINDOW * 20])
    )


def test_rejects_partial_windows_and_missing_model(vad: VadEngine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple"):
        vad.stream().probabilities(np.zeros(WINDOW + 1, dtype=np.float32))
    assert vad.stream().probabilities(np.zeros(0, dtype=np.float32)) == []
    missing = SileroVad(tmp_path / "nowhere.onnx")
    assert not missing.loaded
    with pytest.raises(EngineError, match="no VAD model"):
        missing.load()

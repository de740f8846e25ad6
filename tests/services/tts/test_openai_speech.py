"""OpenAI's speech request in our terms: models, voice names, instructions, pcm's rate."""

from __future__ import annotations

import pytest

from openfish.config import TtsSettings
from openfish.errors import InvalidRequest
from openfish.services.tts.openai_speech import (
    OPENAI_VOICES,
    OpenAISpeech,
    emotion_from_instructions,
    speech_models,
    speech_version,
    speech_voice,
)

SETTINGS = TtsSettings(openai_voices={"fable": "espeak-en-gb"})


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("tts-1", "v1"),
        ("tts-1-hd", "s1"),
        ("gpt-4o-mini-tts", "v3-hd"),
        ("gpt-4o-mini-tts-2025-03-20", "v3-hd"),
        ("s1", "s1"),
        ("v3-hd", "v3-hd"),
    ],
)
def test_models_name_versions(model: str, version: str) -> None:
    assert speech_version(model, SETTINGS) == version


@pytest.mark.parametrize("model", ["tts-2", "", "TTS-1", "tts-1-2025-01-01x"])
def test_unknown_models_are_refused_naming_the_field(model: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^model: "):
        speech_version(model, SETTINGS)


def test_voice_names_map_to_configured_voices_or_the_language_default() -> None:
    assert speech_voice("fable", SETTINGS) == "espeak-en-gb"
    assert speech_voice("Fable", SETTINGS) == "espeak-en-gb"
    assert {speech_voice(name, SETTINGS) for name in OPENAI_VOICES if name != "fable"} == {None}
    assert speech_voice("voice_0123", SETTINGS) == "voice_0123"


@pytest.mark.parametrize(
    ("instructions", "emotion"),
    [
        ("Speak in a cheerful, upbeat tone.", "happy"),
        ("Sound SAD and tired.", "sad"),
        ("Calm at first, then excited.", "calm"),
        ("A furious customer.", "angry"),
        ("Whisper like you are scared.", "fearful"),
        ("Read the news.", "auto"),
        ("", "auto"),
        (None, "auto"),
        ("Calmly", "auto"),  # words, not parts of words
    ],
)
def test_instructions_name_an_emotion(instructions: str | None, emotion: str) -> None:
    assert emotion_from_instructions(instructions) == emotion


def test_the_request_takes_emotion_only_where_the_version_allows_it_and_pcm_is_24khz() -> None:
    def request(model: str, fmt: str = "mp3") -> OpenAISpeech:
        return OpenAISpeech(
            model=model, voice="alloy", input="Hi.", response_format=fmt, instructions="cheerful"
        )

    steered = request("gpt-4o-mini-tts", "pcm").to_request(SETTINGS)
    assert (steered.version, steered.emotion, steered.sample_rate, steered.voice_id) == (
        "v3-hd",
        "happy",
        24000,
        None,
    )
    plain = request("tts-1").to_request(SETTINGS)
    assert (plain.version, plain.emotion, plain.sample_rate) == ("v1", "auto", None)


def test_models_listed_are_those_whose_version_exists() -> None:
    settings = TtsSettings(openai_models={"tts-1": "v1", "tts-1-hd": "gone"})
    assert speech_models(settings) == [("tts-1", False), *((v, True) for v in settings.versions)]

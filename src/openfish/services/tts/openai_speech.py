"""The OpenAI audio API's speech request in our terms: its ``model`` as one of our TTS versions, its
voice names as our voices, ``instructions`` as an emotion, its ``pcm`` as 24 kHz.

Only translation lives here; what is then made, charged and refused is decided by the one TTS
path (``SpeechPlanner`` and ``SynthesisService``), exactly as for ``POST /speech/tts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openfish.config import TtsSettings
from openfish.errors import InvalidRequest
from openfish.services.tts.planner import TtsRequest

#: OpenAI's built-in voice names. Each speaks ``TtsSettings.openai_voices[name]`` when configured,
#: else the server's default voice for the language of the text (Piper for English, Kokoro for
#: Japanese, espeak-ng for the rest), as OpenAI's voices speak every language.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
#: OpenAI's raw PCM is 24 kHz signed 16-bit little-endian mono; clients play it at that rate.
OPENAI_PCM_RATE = 24_000
#: Dated snapshots (``gpt-4o-mini-tts-2025-03-20``) mean the model they are a snapshot of.
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")

#: Words in ``instructions`` that name one of our emotions; the earliest such word wins.
_EMOTION_WORDS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "cheerful", "joyful", "joyous", "excited", "upbeat", "enthusiastic", "delighted"),
    "sad": ("sad", "melancholy", "melancholic", "sorrowful", "somber", "sombre", "gloomy", "mournful"),
    "angry": ("angry", "furious", "irritated", "annoyed", "outraged", "enraged"),
    "fearful": ("fearful", "afraid", "scared", "frightened", "terrified", "nervous", "anxious"),
    "surprised": ("surprised", "astonished", "amazed", "shocked"),
    "disgusted": ("disgusted", "repulsed", "revolted"),
    "calm": ("calm", "soothing", "relaxed", "gentle", "peaceful", "serene", "tranquil"),
}
_EMOTION_PATTERN = re.compile(
    r"\b(" + "|".join(word for words in _EMOTION_WORDS.values() for word in words) + r")\b", re.IGNORECASE
)
_EMOTION_OF = {word: emotion for emotion, words in _EMOTION_WORDS.items() for word in words}


def emotion_from_instructions(instructions: str | None) -> str:
    """The emotion the instructions ask for (the first emotion word in them), or ``auto``.

    A plain keyword match: "Speak in a cheerful tone" → ``happy``; negations are not understood.
    """
    found = _EMOTION_PATTERN.search(instructions or "")
    return _EMOTION_OF[found.group(1).lower()] if found else "auto"


def speech_version(model: str, settings: TtsSettings) -> str:
    """The TTS version an OpenAI ``model`` names: an OpenAI model through
    ``settings.openai_models`` (snapshots by their base name), or one of our versions by name."""
    for name in (model, _SNAPSHOT.sub("", model)):
        if name in settings.openai_models:
            return settings.openai_models[name]
    if model in settings.versions:
        return model
    known = ", ".join([*settings.openai_models, *settings.versions])
    raise InvalidRequest(f"model: no speech model {model!r} here (available: {known})")


def speech_voice(voice: str, settings: TtsSettings) -> str | None:
    """The voice id an OpenAI ``voice`` names: an OpenAI voice name per ``settings.openai_voices``
    (None: the default voice of the text's language), anything else is one of our voice ids."""
    name = voice.lower()
    if name in OPENAI_VOICES:
        return settings.openai_voices.get(name) or None
    return voice


@dataclass(frozen=True)
class OpenAISpeech:
    """The fields of an OpenAI speech request, already type- and range-checked."""

    model: str
    voice: str
    input: str
    response_format: str = "mp3"
    speed: float = 1.0
    instructions: str | None = None

    def to_request(self, settings: TtsSettings) -> TtsRequest:
        """Our TTS request: emotion from ``instructions`` only where the version allows emotion
        (OpenAI too ignores instructions with ``tts-1``), 24 kHz for ``pcm``."""
        version = speech_version(self.model, settings)
        profile = settings.versions.get(version)
        emotion = emotion_from_instructions(self.instructions) if profile and profile.emotion else "auto"
        return TtsRequest(
            text=self.input,
            voice_id=speech_voice(self.voice, settings),
            speed=self.speed,
            version=version,
            format=self.response_format,
            emotion=emotion,
            sample_rate=OPENAI_PCM_RATE if self.response_format == "pcm" else None,
        )


def speech_models(settings: TtsSettings) -> list[tuple[str, bool]]:
    """The ``model`` names speech answers to, each with whether it is ours: OpenAI's models whose
    version is configured, then our versions."""
    openai = [
        (name, False) for name, version in settings.openai_models.items() if version in settings.versions
    ]
    return [*openai, *((version, True) for version in settings.versions)]

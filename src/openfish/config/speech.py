"""The settings of the speech engines' sections: TTS (its versions and the Fish Audio and OpenAI
model names), voices made from references, speech to text, realtime sockets and lip sync. Each is a
field of :class:`openfish.config.Settings`; import them from :mod:`openfish.config`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VersionProfile(BaseModel):
    """What one TTS ``version`` means: engine tuning and which options it honours."""

    noise_scale: float | None = Field(default=None, ge=0, le=2)
    noise_w: float | None = Field(default=None, ge=0, le=2)
    emotion: bool = Field(default=False, description="Whether `emotion` may be set with this version.")


def _default_fish_models() -> dict[str, str]:
    return {
        "speech-1.5": "v1",
        "speech-1.6": "v2",
        "agent-x0": "v2",
        "s1": "s1",
        "s1-mini": "s1",
        "s2-pro": "v3-hd",
        "s2.1-pro": "v3-hd",
        "s2.1-pro-free": "v3-hd",
    }


def _default_openai_models() -> dict[str, str]:
    return {"tts-1": "v1", "tts-1-hd": "s1", "gpt-4o-mini-tts": "v3-hd"}


def _default_versions() -> dict[str, VersionProfile]:
    return {
        "v1": VersionProfile(),
        "v2": VersionProfile(noise_scale=0.6, noise_w=0.7),
        "s1": VersionProfile(noise_scale=0.5, noise_w=0.6),
        "v3-turbo": VersionProfile(emotion=True),
        "v3-hd": VersionProfile(noise_scale=0.55, noise_w=0.7, emotion=True),
    }


class TtsSettings(BaseModel):
    """Text to speech: engines, limits, pricing and the version table."""

    preload: bool = Field(default=True, description="Load models at start (else on first use).")
    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Threads that run synthesis; default two per core, so a new request's first "
        "piece starts at once instead of waiting for a running piece to finish.",
    )
    max_streams: int = Field(default=32, ge=1, description="Syntheses in progress before 503.")
    max_text_chars: int = Field(default=10_000, ge=1)
    credits_per_character: int = Field(default=1, ge=0)
    default_voice: str = "en_US-joe-medium"
    stored_url_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="How long a cache=true audio_url stays valid."
    )
    kokoro: bool = Field(default=True, description="Serve Japanese with Kokoro if installed.")
    espeak: bool = Field(default=True, description="Serve other languages with espeak-ng if installed.")
    versions: dict[str, VersionProfile] = Field(default_factory=_default_versions)
    fish_models: dict[str, str] = Field(
        default_factory=_default_fish_models,
        description="The Fish Audio API's `model` header → one of `versions` (POST /v1/tts and "
        "/v1/tts/live; no header means s2.1-pro, as on Fish Audio). A model whose version is not "
        "configured is refused.",
    )
    openai_models: dict[str, str] = Field(
        default_factory=_default_openai_models,
        description="The OpenAI speech `model` → one of `versions` (dated snapshots by their base "
        "name); our version names are accepted as models too.",
    )
    openai_voices: dict[str, str] = Field(
        default_factory=dict,
        description="OpenAI voice names (alloy, ash, ballad, cedar, coral, echo, fable, marin, nova, "
        "onyx, sage, shimmer, verse) → voice ids; a name not listed speaks the default voice of the "
        "text's language.",
    )


class VoiceSettings(BaseModel):
    """Voices made from reference audio: upload limits, durations, price, conversion."""

    max_files: int = Field(default=20, ge=1, le=100)
    max_file_bytes: int = Field(default=20 << 20, ge=1024)
    max_upload_bytes: int = Field(default=100 << 20, ge=1024, description="Whole multipart body.")
    min_speech_seconds: float = Field(default=3.0, ge=0.5)
    max_speech_seconds: float = Field(default=300.0, ge=1.0)
    creation_credits: int = Field(default=100, ge=0, description="Flat price, charged when ready.")
    base_voices: dict[str, str] = Field(
        default_factory=lambda: {"en": "en_US-joe-medium"},
        description="Language → built-in voice that made voices of that language are converted from.",
    )
    converter: str = "world"


class AsrSettings(BaseModel):
    """Speech to text: whether it runs, which model answers by default, limits and price."""

    enabled: bool = True
    default_model: str = "whisper-base"
    preload: bool = Field(default=True, description="Load models at start (else on first use).")
    max_seconds: float = Field(default=3600, gt=0, description="Longest audio accepted.")
    max_bytes: int = Field(default=200 << 20, ge=1024, description="Largest upload accepted.")
    credits_per_second: int = Field(default=1, ge=0)
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="cuda uses a GPU if present.")
    compute_type: str = Field(default="int8", description="CTranslate2 compute type (int8, float16, ...).")
    batch_size: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Windows (30 s each) of a recording longer than one window that Whisper decodes at "
        "once; a batch's segments come out together. 4 suits 2 CPU cores; a GPU wants 8-16.",
    )
    result_url_ttl_seconds: int = Field(
        default=86_400, ge=60, description="Validity of transcription jobs' signed result URLs."
    )


class RealtimeSettings(BaseModel):
    """Realtime WebSocket sessions (TTS and ASR): limits, timeouts, billing blocks and VAD tuning."""

    tts: bool = Field(default=True, description="Serve realtime TTS (v1 and legacy).")
    asr: bool = Field(default=True, description="Serve realtime ASR.")
    max_message_bytes: int = Field(default=1 << 20, ge=1024, description="Largest frame accepted.")
    idle_timeout_seconds: float = Field(default=60.0, gt=0, description="Close after this long silent.")
    max_session_seconds: float = Field(default=3600.0, gt=0, description="Close a socket this old.")
    max_buffered_chars: int = Field(
        default=20_000, ge=100, description="Text waiting to be spoken before reading pauses."
    )
    max_session_chars: int = Field(default=200_000, ge=1, description="Text one TTS session may send.")
    tts_hold_chars: int = Field(
        default=2_000, ge=1, description="Characters of credit set aside at a time while speaking."
    )
    asr_hold_seconds: int = Field(
        default=60, ge=1, description="Audio seconds of credit set aside at a time."
    )
    asr_model: str | None = Field(default=None, description="Model for realtime ASR (default: asr's).")
    asr_english_model: str | None = Field(
        default="whisper-tiny-en", description="Model for realtime ASR with language=en (unless asr_model)."
    )
    speech_threshold: float = Field(default=0.5, gt=0, lt=1, description="VAD probability of speech.")
    end_silence_ms: int = Field(default=500, ge=100, le=5000, description="Silence that ends an utterance.")
    partial_interval_seconds: float = Field(default=1.0, ge=0.2, description="Least time between partials.")
    max_utterance_seconds: float = Field(default=25.0, ge=2, le=30, description="Longer speech is cut.")


class LipSyncSettings(BaseModel):
    """Lip-sync jobs: engine, limits and price."""

    engine: str = Field(default="mouth-warp", description="Registered lip-sync engine to use.")
    workers: int = Field(default=1, ge=1, le=16, description="Renders running at once (own threads).")
    credits_per_second: int = Field(default=2, ge=0, description="Per started second of output video.")
    max_video_bytes: int = Field(default=200 << 20, ge=1024)
    max_audio_bytes: int = Field(default=50 << 20, ge=1024)
    max_seconds: float = Field(default=300.0, gt=0, description="Longest audio (= output) accepted.")
    max_video_seconds: float = Field(default=600.0, gt=0, description="Longest input video accepted.")
    max_pixels: int = Field(default=1920 * 1080, ge=64 * 64, description="Largest frame (width x height).")
    result_url_ttl_seconds: int = Field(default=86_400, ge=60, description="Validity of result URLs.")

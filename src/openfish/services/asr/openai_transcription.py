"""The OpenAI audio API's transcription ``model`` names in our terms."""

from __future__ import annotations

#: OpenAI's transcription models: each means this server's default model (``asr.default_model``).
OPENAI_TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")


def transcription_model(model: str) -> str | None:
    """Our model for an OpenAI ``model``: None (the default) for OpenAI's, else the name itself,
    which ``TranscriptionService`` checks."""
    return None if model in OPENAI_TRANSCRIPTION_MODELS else model


def transcription_models(ours: list[str]) -> list[tuple[str, bool]]:
    """The ``model`` names transcription answers to, each with whether it is ours."""
    return [*((name, False) for name in OPENAI_TRANSCRIPTION_MODELS), *((name, True) for name in ours)]

"""The OpenAI audio API under ``/v1``, so ``openai.OpenAI(base_url=SERVER + "/v1")`` works unchanged:
``POST /v1/audio/speech`` and ``GET /v1/models`` here; transcriptions and translations in
``openai_transcriptions``. Errors leave in OpenAI's envelope (``openai_errors``).

Speech goes through the one TTS path (``TtsResponder.stream``: the same planner, hold, render chain
and capture as ``POST /api/open/v1/speech/tts``); only the request is translated
(``services/tts/openai_speech.py``) and, for ``stream_format=sse``, the audio framed as events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import CurrentAccount, SettingsDep, TranscriptionDep
from openfish.api.envelopes import error_responses
from openfish.api.openai_errors import OPENAI_V1, OpenAIErrorBody
from openfish.api.tts import TtsResponderDep, clean_text
from openfish.config import Settings
from openfish.errors import Conflict, NotFound
from openfish.services.asr.openai_transcription import transcription_models
from openfish.services.asr.transcription import TranscriptionService
from openfish.services.tts.openai_speech import OpenAISpeech, speech_models

TAG = "openai"
#: Models and speech; mounted with the ``openai_compat`` surface (speech only with ``tts`` on).
router = APIRouter(prefix=OPENAI_V1, tags=[TAG])
speech_router = APIRouter(prefix=OPENAI_V1, tags=[TAG])

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


def openai_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, in OpenAI's envelope."""
    return error_responses(*statuses, envelope=OpenAIErrorBody)


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``event`` as JSON (``data:`` only, as OpenAI sends them)."""
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def event_stream(response: StreamingResponse, events: AsyncIterator[bytes]) -> StreamingResponse:
    """``response`` (its status, headers and clean-up kept) answering ``events`` as SSE instead."""
    response.body_iterator = events
    response.headers["content-type"] = "text/event-stream; charset=utf-8"
    return response


class VoiceRef(BaseModel):
    """A voice given as an object, as the SDK allows for custom voices."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)


class SpeechBody(BaseModel):
    """OpenAI's ``POST /v1/audio/speech`` body."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1, max_length=100, examples=["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "v3-turbo"]
    )
    input: str = Field(min_length=1, description="What to say.")
    voice: Annotated[str, Field(min_length=1, max_length=200)] | VoiceRef = Field(
        description="An OpenAI voice name (alloy, ash, …; see docs/clients.md) or one of our voice ids."
    )
    instructions: str | None = Field(
        default=None,
        max_length=4096,
        description="An emotion word in it (cheerful, sad, calm…) sets the emotion, with models whose "
        "version allows emotion; anything else is accepted and ignored.",
    )
    response_format: SpeechFormat = "mp3"
    speed: Annotated[float, Field(strict=False)] = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"

    @field_validator("input")
    @classmethod
    def _speakable(cls, text: str) -> str:
        return clean_text(text)

    def to_speech(self) -> OpenAISpeech:
        """The service-level request."""
        return OpenAISpeech(
            model=self.model,
            voice=self.voice if isinstance(self.voice, str) else self.voice.id,
            input=self.input,
            response_format=self.response_format,
            speed=self.speed,
            instructions=self.instructions,
        )


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_AUDIO_TYPES = ("audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm")
_SPEECH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "stream_format=audio: the audio, streamed as it is made (a stream that fails "
        "after it started ends without its final chunk). stream_format=sse: `speech.audio.delta` "
        "events (base64 audio; concatenated, the file) then `speech.audio.done`.",
        "content": {
            **dict.fromkeys(_AUDIO_TYPES, _BINARY),
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


@speech_router.post(
    "/audio/speech",
    response_class=StreamingResponse,
    responses={**_SPEECH_RESPONSE, **openai_errors(404, 409, 415, 503)},
    openapi_extra=body_schema(SpeechBody),
)
async def create_speech(
    request: Request, principal: CurrentAccount, tts: TtsResponderDep, settings: SettingsDep
) -> Response:
    """Generate audio from the input text (billed per character, like ``/speech/tts``)."""
    body = await read_model(request, SpeechBody)
    speech = body.to_speech().to_request(settings.tts)
    try:
        response = await tts.stream(request, speech, principal.account_id)
    except NotFound as exc:  # the only thing looked up: unknown, or another account's private voice
        raise NotFound(f"voice: no voice {speech.voice_id!r} here") from exc
    except Conflict as exc:  # a made voice that is not ready yet
        raise Conflict(f"voice: {exc.message}") from exc
    if body.stream_format == "audio":
        return response
    # The body is the synthesis' own generator of encoded audio (``SpeechStream.body``).
    audio = cast(AsyncGenerator[bytes], response.body_iterator)
    return event_stream(response, _speech_events(audio, int(response.headers["X-Characters-Used"])))


async def _speech_events(audio: AsyncGenerator[bytes], characters: int) -> AsyncIterator[bytes]:
    """The audio as ``speech.audio.delta`` events, then ``speech.audio.done`` (usage in characters,
    our billing unit). A failure ends the stream without its final chunk, like the audio stream."""
    async with aclosing(audio):
        async for chunk in audio:
            if chunk:
                yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
    usage = {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters}
    yield sse({"type": "speech.audio.done", "usage": usage})


class ModelOut(BaseModel):
    """A model, as OpenAI lists them."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Always 0: models here have no release date.")
    owned_by: str


class ModelList(BaseModel):
    """OpenAI's model list."""

    object: Literal["list"] = "list"
    data: list[ModelOut]


def _models(settings: Settings, transcription: TranscriptionService) -> list[ModelOut]:
    """Speech models while the tts surface is on, transcription models while asr is."""
    speech = speech_models(settings.tts) if settings.surfaces.tts else []
    heard = transcription_models(transcription.models()) if settings.surfaces.asr else []
    return [
        ModelOut(id=name, created=0, owned_by="openfish" if ours else "openfish (OpenAI name)")
        for name, ours in [*speech, *heard]
    ]


@router.get("/models", response_model=ModelList, responses=openai_errors())
async def list_models(
    _principal: CurrentAccount, settings: SettingsDep, transcription: TranscriptionDep
) -> ModelList:
    """The speech and transcription models this server answers to."""
    return ModelList(data=_models(settings, transcription))


@router.get("/models/{model}", response_model=ModelOut, responses=openai_errors(404))
async def get_model(
    model: str, _principal: CurrentAccount, settings: SettingsDep, transcription: TranscriptionDep
) -> ModelOut:
    """One model of the list, or 404."""
    for found in _models(settings, transcription):
        if found.id == model:
            return found
    raise NotFound(f"model: no model {model!r} here")

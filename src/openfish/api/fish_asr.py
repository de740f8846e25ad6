"""The official Fish Audio API's speech to text, ``POST /v1/asr`` at the server root: MessagePack
(what the ``fish-audio-sdk`` clients send) or multipart, answered by the same transcription
service as ``/api/open/v1/speech/transcriptions`` (same models, limits and price)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from openfish.api.bodies import MSGPACK_TYPES, read_file_form, unpack_map, validate_model
from openfish.api.deps import CurrentAccount, TranscriptionDep
from openfish.api.envelopes import FishErrorBody, error_responses
from openfish.api.fish_tts import FISH_TAG
from openfish.errors import UnsupportedMediaType
from openfish.middleware import request_id_of
from openfish.paths import FISH_ASR

router = APIRouter(tags=[FISH_TAG])

_LANGUAGE = r"^(auto|[A-Za-z]{2,3})$"


class FishAsrBody(BaseModel):
    """What to transcribe (MessagePack: ``audio`` as binary)."""

    model_config = ConfigDict(extra="forbid")

    audio: bytes = Field(description="The audio file, any format FFmpeg decodes.")
    language: str | None = Field(default=None, pattern=_LANGUAGE, description="None or auto: detect it.")
    ignore_timestamps: StrictBool | None = Field(
        default=None, description="true: no segments in the answer (the API's default); false: segments."
    )


class FishSegment(BaseModel):
    """A segment of the transcript (seconds from the start)."""

    text: str
    start: float
    end: float


class FishTranscript(BaseModel):
    """The transcript."""

    text: str
    duration: float = Field(description="Seconds of audio.")
    segments: list[FishSegment] = Field(description="Empty when ignore_timestamps is true.")


_FORM_SCHEMA = {
    "type": "object",
    "required": ["audio"],
    "properties": {
        "audio": {"type": "string", "format": "binary"},
        "language": {"type": "string", "pattern": _LANGUAGE},
        "ignore_timestamps": {"type": "boolean"},
    },
}


@router.post(
    FISH_ASR,
    response_model=FishTranscript,
    responses=error_responses(402, 404, 413, 415, 422, 503, envelope=FishErrorBody),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/msgpack": {"schema": {"$ref": "#/components/schemas/FishAsrBody"}},
                "multipart/form-data": {"schema": _FORM_SCHEMA},
            },
        }
    },
)
async def fish_asr(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> FishTranscript:
    """Transcribe speech (Fish Audio API); billed per second of audio like our own transcription."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in MSGPACK_TYPES:
        body = validate_model(FishAsrBody, unpack_map(await request.body()))
    elif media_type == "multipart/form-data":
        body = await _from_form(request)
    else:
        raise UnsupportedMediaType("Send the audio as application/msgpack or multipart/form-data.")
    result = await transcription.transcribe(
        principal.account_id,
        body.audio,
        language=body.language,
        words=False,
        model=None,
        reference=f"asr:{request_id_of(request.scope)}",
    )
    transcript = result.transcript
    segments = [] if body.ignore_timestamps is not False else transcript.segments
    return FishTranscript(
        text=transcript.text,
        duration=round(transcript.duration, 3),
        segments=[FishSegment(text=s.text, start=s.start, end=s.end) for s in segments],
    )


async def _from_form(request: Request) -> FishAsrBody:
    fields, audio = await read_file_form(
        request, "audio", ("language", "ignore_timestamps"), ("ignore_timestamps",)
    )
    return validate_model(FishAsrBody, {**fields, "audio": audio})

"""Speech to text: ``POST /api/open/v1/speech/transcriptions`` (JSON with ``audioUrl``, or multipart)."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from openfish.api.bodies import read_file_form, read_model, validate_model
from openfish.api.deps import CurrentAccount, TranscriptionDep
from openfish.api.envelopes import error_responses
from openfish.errors import UnsupportedMediaType
from openfish.middleware import request_id_of
from openfish.paths import V1
from openfish.services.asr.captions import CAPTION_TYPES, captions
from openfish.services.asr.transcription import transcript_document

router = APIRouter(prefix=V1, tags=["transcriptions"])

_LANGUAGE = r"^(auto|[A-Za-z]{2,3})$"
ResponseFormat = Literal["json", "srt", "vtt"]


class TranscriptionJobBody(BaseModel):
    """Transcribe the audio at ``audioUrl`` in the background (a transcription job)."""

    model_config = ConfigDict(extra="forbid")

    audioUrl: str = Field(min_length=1, max_length=4096, description="Stored audio, an upload, or a web URL.")
    language: str = Field(default="auto", pattern=_LANGUAGE)
    words: StrictBool = Field(default=False, description="Include word timestamps.")
    model: str | None = Field(default=None, max_length=60, examples=["whisper-base", "whisper-tiny-en"])


class TranscriptionBody(TranscriptionJobBody):
    """Transcribe the audio at ``audioUrl``."""

    response_format: ResponseFormat = Field(
        default="json", description="json (the transcript object), or captions: srt or vtt."
    )


class WordOut(BaseModel):
    """A word and when it was said (seconds)."""

    start: float
    end: float
    word: str
    probability: float


class SegmentOut(BaseModel):
    """A segment of the transcript."""

    start: float
    end: float
    text: str
    words: list[WordOut] | None = None


class TranscriptionOut(BaseModel):
    """The transcript and what it cost."""

    text: str
    duration: float
    language: str
    segments: list[SegmentOut]
    credits_used: int
    quota_remaining: int


BodyT = TypeVar("BodyT", bound=TranscriptionJobBody)


def request_body(model: type[TranscriptionJobBody]) -> dict[str, Any]:
    """``openapi_extra`` declaring the body: ``model`` as JSON, or a multipart form of ``file`` and
    the same fields (``audioUrl`` aside)."""
    form: dict[str, Any] = {
        "file": {"type": "string", "format": "binary"},
        "language": {"type": "string", "pattern": _LANGUAGE},
        "words": {"type": "boolean"},
        "model": {"type": "string", "maxLength": 60},
        "response_format": {"type": "string", "enum": ["json", "srt", "vtt"]},
    }
    multipart = {
        "type": "object",
        "required": ["file"],
        "properties": {name: form[name] for name in ("file", *model.model_fields) if name in form},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


async def read_form(request: Request, model: type[BodyT]) -> tuple[BodyT, bytes]:
    """A multipart transcription request: its fields as ``model`` and the file's bytes."""
    names = tuple(name for name in model.model_fields if name != "audioUrl")
    fields, data = await read_file_form(request, "file", names, ("words",))
    return validate_model(model, {"audioUrl": "upload", **fields}), data


_CAPTIONS = {media.split(";")[0]: {"schema": {"type": "string"}} for media in CAPTION_TYPES.values()}


@router.post(
    "/speech/transcriptions",
    response_model=TranscriptionOut,
    responses={
        200: {"description": "The transcript (json), or its captions (srt, vtt).", "content": _CAPTIONS},
        **error_responses(402, 403, 404, 413, 415, 422, 503),
    },
    openapi_extra=request_body(TranscriptionBody),
)
async def transcribe(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> TranscriptionOut | Response:
    """Transcribe speech with segment (and optionally word) timestamps; billed per second of audio."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        body, data = await read_form(request, TranscriptionBody)
    elif media_type in ("application/json", "application/msgpack", "application/x-msgpack"):
        body = await read_model(request, TranscriptionBody)
        transcription.check(body.model, body.language)
        data = await transcription.audio_from_url(principal.account_id, body.audioUrl)
    else:
        raise UnsupportedMediaType("Send JSON with audioUrl, or multipart/form-data with the file.")
    result = await transcription.transcribe(
        principal.account_id,
        data,
        language=body.language,
        words=body.words,
        model=body.model,
        reference=f"asr:{request_id_of(request.scope)}",
    )
    transcript = result.transcript
    if body.response_format in CAPTION_TYPES:
        return Response(
            captions(transcript.segments, body.response_format),
            media_type=CAPTION_TYPES[body.response_format],
            headers={
                "X-Credits-Used": str(result.credits),
                "X-Quota-Remaining": str(result.charge.quota_remaining),
            },
        )
    return TranscriptionOut.model_validate(
        transcript_document(transcript, result.credits, result.charge.quota_remaining)
    )

"""Speech to text: ``POST /api/open/v1/speech/transcriptions`` (JSON with ``audioUrl``, or multipart)."""

from __future__ import annotations

from typing import Any, Literal

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

router = APIRouter(prefix=V1, tags=["transcriptions"])

_LANGUAGE = r"^(auto|[A-Za-z]{2,3})$"
ResponseFormat = Literal["json", "srt", "vtt"]


class TranscriptionBody(BaseModel):
    """Transcribe the audio at ``audioUrl``."""

    model_config = ConfigDict(extra="forbid")

    audioUrl: str = Field(min_length=1, max_length=4096, description="Stored audio, an upload, or a web URL.")
    language: str = Field(default="auto", pattern=_LANGUAGE)
    words: StrictBool = Field(default=False, description="Include word timestamps.")
    model: str | None = Field(default=None, max_length=60, examples=["whisper-base", "whisper-tiny-en"])
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


_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "language": {"type": "string", "pattern": _LANGUAGE},
        "words": {"type": "boolean"},
        "model": {"type": "string", "maxLength": 60},
        "response_format": {"type": "string", "enum": ["json", "srt", "vtt"]},
    },
}
_CAPTIONS = {media.split(";")[0]: {"schema": {"type": "string"}} for media in CAPTION_TYPES.values()}


@router.post(
    "/speech/transcriptions",
    response_model=TranscriptionOut,
    responses={
        200: {"description": "The transcript (json), or its captions (srt, vtt).", "content": _CAPTIONS},
        **error_responses(402, 403, 404, 413, 415, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TranscriptionBody"}},
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            },
        }
    },
)
async def transcribe(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> TranscriptionOut | Response:
    """Transcribe speech with segment (and optionally word) timestamps; billed per second of audio."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        options, data = await _from_form(request)
    elif media_type in ("application/json", "application/msgpack", "application/x-msgpack"):
        body = await read_model(request, TranscriptionBody)
        options = body.model_dump()
        transcription.check(body.model, body.language)
        data = await transcription.audio_from_url(principal.account_id, body.audioUrl)
    else:
        raise UnsupportedMediaType("Send JSON with audioUrl, or multipart/form-data with the file.")
    result = await transcription.transcribe(
        principal.account_id,
        data,
        language=options["language"],
        words=options["words"],
        model=options["model"],
        reference=f"asr:{request_id_of(request.scope)}",
    )
    transcript = result.transcript
    if options["response_format"] in CAPTION_TYPES:
        return Response(
            captions(transcript.segments, options["response_format"]),
            media_type=CAPTION_TYPES[options["response_format"]],
            headers={
                "X-Credits-Used": str(result.credits),
                "X-Quota-Remaining": str(result.charge.quota_remaining),
            },
        )
    return TranscriptionOut(
        text=transcript.text,
        duration=round(transcript.duration, 3),
        language=transcript.language,
        segments=[
            SegmentOut(
                start=segment.start,
                end=segment.end,
                text=segment.text,
                words=[
                    WordOut(start=w.start, end=w.end, word=w.text, probability=w.probability)
                    for w in segment.words
                ]
                if segment.words is not None
                else None,
            )
            for segment in transcript.segments
        ],
        credits_used=result.credits,
        quota_remaining=result.charge.quota_remaining,
    )


async def _from_form(request: Request) -> tuple[dict[str, Any], bytes]:
    fields, data = await read_file_form(
        request, "file", ("language", "words", "model", "response_format"), ("words",)
    )
    options = validate_model(TranscriptionBody, {"audioUrl": "upload", **fields}).model_dump()
    return options, data

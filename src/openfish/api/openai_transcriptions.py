"""OpenAI's ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/translations`` (multipart, as the
openai SDK sends them), answered by ``TranscriptionService``: the same decode, limits, hold and
capture as ``POST /api/open/v1/speech/transcriptions``, billed per second of audio alike."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from openfish.api.bodies import validate_model
from openfish.api.deps import CurrentAccount, TranscriptionDep
from openfish.api.openai_compat import TAG, openai_errors, sse
from openfish.api.openai_errors import OPENAI_V1
from openfish.engines.base import DecodeOptions, Transcript
from openfish.errors import InvalidRequest, UnsupportedMediaType
from openfish.middleware import request_id_of
from openfish.services.asr.captions import CAPTION_TYPES, captions
from openfish.services.asr.languages import language_name
from openfish.services.asr.openai_transcription import transcription_model
from openfish.services.asr.transcription import TranscriptionResult, TranscriptionService

router = APIRouter(prefix=OPENAI_V1, tags=[TAG])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class TranslationForm(BaseModel):
    """The fields of a translation, besides ``file``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=100, examples=["whisper-1", "whisper-base"])
    prompt: str | None = Field(default=None, max_length=4000, description="Text that came before.")
    response_format: ResponseFormat = "json"
    temperature: float = Field(default=0.0, ge=0.0, le=1.0, description="0: greedy, hotter on failure.")


class TranscriptionForm(TranslationForm):
    """The fields of a transcription, besides ``file``."""

    language: str | None = Field(default=None, pattern=r"^(auto|[A-Za-z]{2,3})$")
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        default_factory=list, description="With verbose_json: `segment` (the default), `word`, or both."
    )
    stream: bool = Field(default=False, description="Answer server-sent events (json and text only).")


def _form_schema(form: type[TranslationForm]) -> dict[str, Any]:
    schema = form.model_json_schema()
    properties = {"file": {"type": "string", "format": "binary"}, **schema["properties"]}
    if "timestamp_granularities" in properties:
        properties["timestamp_granularities[]"] = properties.pop("timestamp_granularities")
    content = {"type": "object", "required": ["file", "model"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": content}}}}


_TEXT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "json: `{text, usage}`; verbose_json: `{task, language, duration, text, segments, "
        "words?, usage}`; text, srt, vtt: the text or captions; stream=true: `transcript.text.delta` "
        "events then `transcript.text.done`.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}
_ERRORS = openai_errors(403, 404, 413, 415, 422, 503)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])
FormT = TypeVar("FormT", bound=TranslationForm)


def _form_route(path: str, form: type[TranslationForm]) -> Callable[[Endpoint], Endpoint]:
    """A POST route of ``router`` that takes ``form`` as multipart and answers in OpenAI's formats."""
    return router.post(
        path,
        response_class=Response,
        responses={**_TEXT_RESPONSE, **_ERRORS},
        openapi_extra=_form_schema(form),
    )


@_form_route("/audio/transcriptions", TranscriptionForm)
async def create_transcription(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> Response:
    """Transcribe audio into the language spoken (billed per second of audio)."""
    form, data = await _read_form(request, TranscriptionForm)
    if form.stream and form.response_format not in ("json", "text"):
        raise InvalidRequest(f"stream: not with response_format {form.response_format} (json or text)")
    granularities = set(form.timestamp_granularities) or {"segment"}
    words = form.response_format == "verbose_json" and "word" in granularities
    result = await _run(
        request, principal.account_id, transcription, form, data, "transcribe", form.language, words
    )
    if form.stream:
        return StreamingResponse(
            _text_events(result.transcript), media_type="text/event-stream", headers=_usage_headers(result)
        )
    language = language_name(result.transcript.language)
    listed = {"segments": "segment" in granularities, "words": words}
    return _answer(form.response_format, result, "transcribe", language, **listed)


@_form_route("/audio/translations", TranslationForm)
async def create_translation(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> Response:
    """Translate speech into English text (Whisper's translate task; billed like transcription)."""
    form, data = await _read_form(request, TranslationForm)
    result = await _run(request, principal.account_id, transcription, form, data, "translate", None, False)
    return _answer(form.response_format, result, "translate", "english")


async def _run(
    request: Request,
    account_id: str,
    transcription: TranscriptionService,
    form: TranslationForm,
    data: bytes,
    task: str,
    language: str | None,
    words: bool,
) -> TranscriptionResult:
    options = DecodeOptions(task=task, prompt=form.prompt, temperature=form.temperature or None)
    return await transcription.transcribe(
        account_id,
        data,
        language=language,
        words=words,
        model=transcription_model(form.model),
        reference=f"asr:{request_id_of(request.scope)}",
        options=options,
    )


async def _read_form(request: Request, form_type: type[FormT]) -> tuple[FormT, bytes]:
    """The form's fields (unknown ones refused, as OpenAI does) and the uploaded file's bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise UnsupportedMediaType("Send multipart/form-data with the audio as `file`.")
    lists = {"timestamp_granularities[]": "timestamp_granularities"}
    # The form is closed on the way out, so its spooled temporary file is too.
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("file: a multipart field `file` with the audio is required")
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == "file":
                continue
            if not isinstance(value, str):
                raise InvalidRequest(f"{key}: must be a plain form field")
            name = lists.get(key, key)
            if name not in form_type.model_fields:
                raise InvalidRequest(f"{key}: unrecognized request argument")
            if name in lists.values():
                fields.setdefault(name, []).append(value)
            else:
                fields[name] = _field_value(name, value)
        return validate_model(form_type, fields), await upload.read()


def _field_value(name: str, value: str) -> Any:
    """A form string as the type its field takes (forms carry only strings)."""
    if name == "stream":
        return _BOOLEANS.get(value.lower(), value)
    if name == "temperature":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _usage_headers(result: TranscriptionResult) -> dict[str, str]:
    return {"X-Credits-Used": str(result.credits), "X-Quota-Remaining": str(result.charge.quota_remaining)}


def _answer(
    response_format: str,
    result: TranscriptionResult,
    task: str,
    language: str,
    *,
    segments: bool = True,
    words: bool = False,
) -> Response:
    """The transcript in ``response_format``; ``task``, ``language``, ``segments`` and ``words``
    (whether to list them) are for verbose_json. Usage is the seconds billed."""
    transcript, headers = result.transcript, _usage_headers(result)
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n", headers=headers)
    if response_format in CAPTION_TYPES:
        return Response(
            captions(transcript.segments, response_format),
            media_type=CAPTION_TYPES[response_format],
            headers=headers,
        )
    if response_format == "json":
        return JSONResponse({"text": transcript.text, "usage": usage}, headers=headers)
    timed = _timed(transcript, segments=segments, words=words)
    verbose = {"task": task, "language": language, **timed, "usage": usage}
    return JSONResponse(verbose, headers=headers)


def _timed(transcript: Transcript, *, segments: bool, words: bool) -> dict[str, Any]:
    """verbose_json's duration, text, and the segments and words if wanted."""
    listed = [
        {
            "id": index,
            "seek": s.seek,
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "text": s.text,
            "tokens": list(s.tokens),
            "temperature": s.temperature,
            "avg_logprob": s.avg_logprob,
            "compression_ratio": s.compression_ratio,
            "no_speech_prob": s.no_speech_prob,
        }
        for index, s in enumerate(transcript.segments)
    ]
    said = [
        {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
        for s in transcript.segments
        for w in s.words or []
    ]
    answer: dict[str, Any] = {"duration": round(transcript.duration, 3), "text": transcript.text}
    if segments:
        answer["segments"] = listed
    if words:
        answer["words"] = said
    return answer


async def _text_events(transcript: Transcript) -> AsyncIterator[bytes]:
    """The transcript as ``transcript.text.delta`` events (one per segment; concatenated, the text),
    then ``transcript.text.done``."""
    for index, segment in enumerate(transcript.segments):
        yield sse({"type": "transcript.text.delta", "delta": (" " if index else "") + segment.text})
    yield sse({"type": "transcript.text.done", "text": transcript.text})

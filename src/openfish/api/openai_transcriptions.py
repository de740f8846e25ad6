"""OpenAI's ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/translations`` (multipart, as the
openai SDK sends them), answered by ``TranscriptionService``: the same decode, limits, hold and
capture as ``POST /api/open/v1/speech/transcriptions``, billed per second of audio alike.
``stream=true`` relays each segment as Whisper decodes it (``TranscriptionService.stream``)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.background import BackgroundTask

from openfish.api.bodies import FormFloat, FormInt, read_file_form, validate_model
from openfish.api.deps import CurrentAccount, TranscriptionDep
from openfish.api.openai_compat import TAG, openai_errors, sse
from openfish.api.openai_errors import OPENAI_V1
from openfish.engines.base import DecodeOptions, Segment, SpeechFilter
from openfish.errors import InvalidRequest
from openfish.middleware import request_id_of
from openfish.services.asr.captions import CAPTION_TYPES, captions
from openfish.services.asr.languages import language_name
from openfish.services.asr.openai_transcription import (
    DIARIZATION_FIELDS,
    delta_event,
    done_event,
    json_body,
    refuse_diarization,
    transcription_model,
    verbose_body,
)
from openfish.services.asr.transcription import TranscriptionResult, TranscriptionStream

router = APIRouter(prefix=OPENAI_V1, tags=[TAG])

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
_SPEECH = SpeechFilter()


class ServerVad(BaseModel):
    """``chunking_strategy`` as OpenAI's ``server_vad`` object: how Whisper's voice-activity filter
    finds the speech (what it leaves out is not transcribed). Absent fields keep our defaults."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["server_vad"]
    prefix_padding_ms: FormInt = Field(
        default=_SPEECH.padding_ms, ge=0, le=10_000, description="Audio kept on each side of speech."
    )
    silence_duration_ms: FormInt = Field(
        default=_SPEECH.min_silence_ms, ge=0, le=10_000, description="Silence that ends a stretch of speech."
    )
    threshold: FormFloat = Field(
        default=_SPEECH.threshold, ge=0.0, le=1.0, description="Speech probability that counts as speech."
    )

    def to_filter(self) -> SpeechFilter:
        """The engine's terms."""
        return SpeechFilter(self.threshold, self.silence_duration_ms, self.prefix_padding_ms)


class TranslationForm(BaseModel):
    """The fields of a translation, besides ``file``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=100, examples=["whisper-1", "whisper-base"])
    prompt: str | None = Field(default=None, max_length=4000, description="Text that came before.")
    response_format: ResponseFormat = "json"
    temperature: FormFloat = Field(default=0.0, ge=0.0, le=1.0, description="0: greedy, hotter on failure.")


class TranscriptionForm(TranslationForm):
    """The fields of a transcription, besides ``file``."""

    language: str | None = Field(default=None, pattern=r"^(auto|[A-Za-z]{2,3})$")
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        default_factory=list, description="With verbose_json: `segment` (the default), `word`, or both."
    )
    stream: StrictBool = Field(default=False, description="Answer server-sent events (json and text only).")
    include: list[str] = Field(
        default_factory=list,
        description="`logprobs` (json only): Whisper's word probabilities.",
        json_schema_extra={"items": {"type": "string", "enum": ["logprobs"]}},
    )
    chunking_strategy: ServerVad | None = Field(
        default=None, description="`auto` (the default filter) or a `server_vad` object."
    )

    @field_validator("include")
    @classmethod
    def _includable(cls, include: list[str]) -> list[str]:
        for item in include:
            if item != "logprobs":
                raise ValueError(f"{item!r} cannot be included (only logprobs)")
        return include

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: object) -> object:
        if isinstance(value, str):  # "auto": the filter as it is by default
            if value != "auto":
                raise ValueError(f"{value!r} is not a chunking strategy (auto, or server_vad fields)")
            return None
        return value

    def to_options(self) -> DecodeOptions:
        """The decode this form asks for."""
        speech = self.chunking_strategy.to_filter() if self.chunking_strategy else _SPEECH
        return DecodeOptions(prompt=self.prompt, temperature=self.temperature or None, speech=speech)


#: Form fields sent as repeated ``name[]`` (the diarization ones only to be refused by name), and
#: those sent as ``name[key]`` (or one plain value).
_LISTS = ("timestamp_granularities", "include", *DIARIZATION_FIELDS)
_MAPS = ("chunking_strategy",)


def _form_schema(form: type[TranslationForm]) -> dict[str, Any]:
    schema = form.model_json_schema()
    properties = {"file": {"type": "string", "format": "binary"}, **schema["properties"]}
    for name in _LISTS:
        if name in properties:
            properties[f"{name}[]"] = properties.pop(name)
    if "chunking_strategy" in properties:  # chunking_strategy=auto, or chunking_strategy[type]=…
        auto = {"type": "string", "enum": ["auto"]}
        properties["chunking_strategy"] = {"oneOf": [auto, ServerVad.model_json_schema()]}
    content = {"type": "object", "required": ["file", "model"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": content}}}}


_TEXT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "json: `{text, logprobs?, usage}`; verbose_json: `{task, language, duration, "
        "text, segments, words?, usage}`; text, srt, vtt: the text or captions; stream=true: a "
        "`transcript.text.delta` event as each segment is decoded, then `transcript.text.done`.",
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
    logprobs = bool(form.include)
    if logprobs and form.response_format != "json":
        raise InvalidRequest(f"include: logprobs only with response_format json, not {form.response_format}")
    granularities = set(form.timestamp_granularities) or {"segment"}
    words = logprobs or (form.response_format == "verbose_json" and "word" in granularities)
    reference = f"asr:{request_id_of(request.scope)}"
    model, options = transcription_model(form.model), form.to_options()
    if form.stream:
        stream = await transcription.stream(
            principal.account_id,
            data,
            language=form.language,
            words=words,
            model=model,
            reference=reference,
            options=options,
        )
        return StreamingResponse(
            _text_events(stream, logprobs=logprobs),
            media_type="text/event-stream",
            headers=_usage_headers(stream.credits, stream.charge.quota_remaining),
            # The stream settles itself; this releases the hold of one that was never started.
            background=BackgroundTask(transcription.settle, reference),
        )
    result = await transcription.transcribe(
        principal.account_id,
        data,
        language=form.language,
        words=words,
        model=model,
        reference=reference,
        options=options,
    )
    language = language_name(result.transcript.language)
    listed = {"segments": "segment" in granularities, "words": words, "logprobs": logprobs}
    return _answer(form.response_format, result, "transcribe", language, **listed)


@_form_route("/audio/translations", TranslationForm)
async def create_translation(
    request: Request, principal: CurrentAccount, transcription: TranscriptionDep
) -> Response:
    """Translate speech into English text (Whisper's translate task; billed like transcription)."""
    form, data = await _read_form(request, TranslationForm)
    result = await transcription.transcribe(
        principal.account_id,
        data,
        language=None,
        words=False,
        model=transcription_model(form.model),
        reference=f"asr:{request_id_of(request.scope)}",
        options=DecodeOptions(task="translate", prompt=form.prompt, temperature=form.temperature or None),
    )
    return _answer(form.response_format, result, "translate", "english")


async def _read_form(request: Request, form_type: type[FormT]) -> tuple[FormT, bytes]:
    """The form's fields (unknown ones refused, as OpenAI does; diarization refused by name) and
    the uploaded file's bytes."""
    names = form_type.model_fields
    lists = [name for name in _LISTS if name in names or form_type is TranscriptionForm]
    maps = [name for name in _MAPS if name in names]
    plain = [name for name in names if name not in (*lists, *maps)]
    fields, data = await read_file_form(request, "file", plain, ("stream",), lists=lists, maps=maps)
    refuse_diarization(fields)
    return validate_model(form_type, fields), data


def _usage_headers(credits: int, quota_remaining: int) -> dict[str, str]:
    return {"X-Credits-Used": str(credits), "X-Quota-Remaining": str(quota_remaining)}


def _answer(
    response_format: str,
    result: TranscriptionResult,
    task: str,
    language: str,
    *,
    segments: bool = True,
    words: bool = False,
    logprobs: bool = False,
) -> Response:
    """The transcript in ``response_format``; ``task``, ``language``, ``segments`` and ``words``
    (whether to list them) are for verbose_json, ``logprobs`` for json. Usage is the seconds billed."""
    transcript = result.transcript
    headers = _usage_headers(result.credits, result.charge.quota_remaining)
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
        return JSONResponse({**json_body(transcript, logprobs=logprobs), "usage": usage}, headers=headers)
    timed = verbose_body(transcript, segments=segments, words=words)
    verbose = {"task": task, "language": language, **timed, "usage": usage}
    return JSONResponse(verbose, headers=headers)


async def _text_events(stream: TranscriptionStream, *, logprobs: bool) -> AsyncIterator[bytes]:
    """A ``transcript.text.delta`` event as each segment is decoded (concatenated, the text), then
    ``transcript.text.done``. A client that leaves closes the stream: its decode stops and its hold
    is released."""
    index = 0
    async with aclosing(stream.items) as items:
        async for item in items:
            if isinstance(item, Segment):
                yield sse(delta_event(item, index, logprobs=logprobs))
                index += 1
            else:
                yield sse(done_event(item, logprobs=logprobs))

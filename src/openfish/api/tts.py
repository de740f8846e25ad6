"""Text to speech, sync: ``POST /api/open/v1/speech/tts`` and the legacy ``POST /api/open/tts``
(audio streams back as it is made)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from starlette.background import BackgroundTask

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import CurrentAccount, SettingsDep, SignerDep, SynthesisDep
from openfish.api.envelopes import error_responses
from openfish.config import TtsSettings
from openfish.middleware import request_id_of
from openfish.paths import LEGACY, V1, client_url
from openfish.services.runtime.signing import UrlSigner
from openfish.services.tts.planner import TtsRequest
from openfish.services.tts.synthesis import SynthesisService

router = APIRouter(prefix=V1, tags=["tts"])
legacy_router = APIRouter(prefix=LEGACY, tags=["legacy"])

AudioFormat = Literal["mp3", "wav", "pcm", "opus", "aac", "flac"]
Emotion = Literal["happy", "sad", "angry", "fearful", "disgusted", "surprised", "calm", "fluent", "auto"]
Number = Annotated[float, Field(strict=True)]


def clean_text(text: str) -> str:
    """Text to speak as a validator takes it: valid Unicode (no lone surrogates), and control
    characters other than line breaks and tabs, which carry nothing to say, turned into spaces."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return "".join(c if c >= " " or c in "\n\t" else " " for c in text)


class TtsBody(BaseModel):
    """A TTS request (JSON or MessagePack). The voice may be named by any one of three aliases."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="What to say.")
    voiceId: str | None = Field(default=None, max_length=200, description="A voice id (see /voices).")
    reference_id: str | None = Field(default=None, max_length=200, description="Alias of voiceId.")
    modelId: str | None = Field(default=None, max_length=200, description="Alias of voiceId.")
    speed: Number = Field(default=1.0, ge=0.5, le=2.0)
    volume: Number = Field(default=0.0, ge=-20, le=20, description="Gain in dB.")
    version: str = Field(default="v1", max_length=20, examples=["v1", "v2", "s1", "v3-turbo", "v3-hd"])
    format: AudioFormat = "mp3"
    emotion: Emotion = "auto"
    language: str = Field(default="auto", pattern=r"^(auto|[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?)$")
    cache: StrictBool = False

    @field_validator("text")
    @classmethod
    def _speakable(cls, text: str) -> str:
        return clean_text(text)

    @model_validator(mode="after")
    def _one_voice(self) -> TtsBody:
        named = {v for v in (self.voiceId, self.reference_id, self.modelId) if v}
        if len(named) > 1:
            raise ValueError("voiceId, reference_id and modelId name different voices")
        return self

    @property
    def voice(self) -> str | None:
        """The voice, whichever alias named it."""
        return self.voiceId or self.reference_id or self.modelId

    def to_request(self) -> TtsRequest:
        """The service-level request."""
        return TtsRequest(
            text=self.text,
            voice_id=self.voice,
            speed=self.speed,
            volume_db=self.volume,
            version=self.version,
            format=self.format,
            emotion=self.emotion,
            language=self.language,
        )


class LegacyTtsBody(TtsBody):
    """The legacy TTS request: the voice must be given as ``reference_id``."""

    reference_id: str = Field(min_length=1, max_length=200, description="The voice model id.")


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_USAGE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("X-Characters-Used", "Characters billed."),
        ("X-Credits-Used", "Credits billed."),
        ("X-Quota-Remaining", "Credits the account may still spend this month."),
    )
}


class TtsStored(BaseModel):
    """The answer to ``cache=true``: where the stored audio can be fetched, and what it cost."""

    success: bool
    audio_url: str = Field(description="Expiring signed URL of the audio (supports Range requests).")
    format: str
    characters_used: int
    credits_used: int
    quota_remaining: int
    expires_at: datetime


AUDIO_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "cache=false: the audio, streamed as it is synthesized (chunked). A stream that "
        "fails after it started ends without its final chunk, which HTTP clients report as an error. "
        "cache=true: JSON with a signed URL of the stored audio.",
        "headers": _USAGE_HEADERS,
        "model": TtsStored,
        "content": dict.fromkeys(
            ("audio/mpeg", "audio/wav", "audio/pcm", "audio/ogg", "audio/aac", "audio/flac"), _BINARY
        ),
    }
}


@dataclass(frozen=True)
class TtsResponder:
    """Answers a TTS request (v1 and legacy alike) with the services that takes."""

    synthesis: SynthesisService
    signer: UrlSigner
    settings: TtsSettings
    public_url: str | None

    async def respond(self, request: Request, body: TtsBody, account_id: str) -> Response:
        """Stream the audio for ``body``, or store it and answer its signed URL (``cache=true``)."""
        reference = f"tts:{request_id_of(request.scope)}"
        if body.cache:
            stored = await self.synthesis.render(account_id, body.to_request(), reference)
            expires, signature = self.signer.sign(stored.name, self.settings.stored_url_ttl_seconds)
            url = client_url(request, self.public_url, "stored_audio", name=stored.name).include_query_params(
                expires=expires, sig=signature
            )
            answer = TtsStored(
                success=True,
                audio_url=str(url),
                format=stored.plan.format,
                characters_used=stored.plan.characters,
                credits_used=stored.plan.credits,
                quota_remaining=stored.hold.quota_remaining,
                expires_at=datetime.fromtimestamp(expires, UTC),
            )
            return JSONResponse(answer.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
        return await self.stream(request, body.to_request(), account_id)

    async def stream(self, request: Request, speech: TtsRequest, account_id: str) -> StreamingResponse:
        """Stream the audio of ``speech`` as it is made, with the usage headers; the hold is captured
        when the last byte is ready and released if the stream fails or is abandoned."""
        reference = f"tts:{request_id_of(request.scope)}"
        stream = await self.synthesis.start(account_id, speech, reference)
        headers = {
            "X-Characters-Used": str(stream.plan.characters),
            "X-Credits-Used": str(stream.plan.credits),
            "X-Quota-Remaining": str(stream.hold.quota_remaining),
            "Cache-Control": "no-store",
        }
        return StreamingResponse(
            stream.body,
            media_type=stream.content_type,
            headers=headers,
            background=BackgroundTask(self.synthesis.settle, reference),
        )


#: What the sync TTS routes' own 409 and 422 mean.
TTS_ERRORS = {
    409: "The voice is still being made (or failed); it cannot speak yet.",
    422: "cache=true, and the engine made no audio of the text (nothing is charged).",
}


async def _tts_responder(synthesis: SynthesisDep, signer: SignerDep, settings: SettingsDep) -> TtsResponder:
    return TtsResponder(synthesis, signer, settings.tts, settings.public_url)


#: The three services a TTS route answers with, as one dependency (the v1 and legacy routes share it).
TtsResponderDep = Annotated[TtsResponder, Depends(_tts_responder)]


@router.post(
    "/speech/tts",
    response_class=StreamingResponse,
    responses={**AUDIO_RESPONSE, **error_responses(402, 404, 409, 415, 422, 503, descriptions=TTS_ERRORS)},
    openapi_extra=body_schema(TtsBody),
)
async def speech_tts(request: Request, principal: CurrentAccount, tts: TtsResponderDep) -> Response:
    """Synthesize speech; the audio streams back in the requested format."""
    body = await read_model(request, TtsBody)
    return await tts.respond(request, body, principal.account_id)


@legacy_router.post(
    "/tts",
    response_class=StreamingResponse,
    responses={
        **AUDIO_RESPONSE,
        **error_responses(404, 409, 415, 422, 503, legacy=True, descriptions=TTS_ERRORS),
    },
    openapi_extra=body_schema(LegacyTtsBody),
)
async def legacy_tts(request: Request, principal: CurrentAccount, tts: TtsResponderDep) -> Response:
    """Synthesize speech (legacy path, deprecated: use ``POST /api/open/v1/speech/tts``); insufficient
    credits answer 429 here."""
    body = await read_model(request, LegacyTtsBody)
    return await tts.respond(request, body, principal.account_id)

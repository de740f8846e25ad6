"""The official Fish Audio API's text to speech, ``POST /v1/tts`` at the server root (JSON or
MessagePack; the ``model`` header picks the version), so that the ``fish-audio-sdk`` clients work
unchanged (``docs/clients.md``).

The body is translated into our TTS request (``services/tts/fish_request.py``) and answered by the same
responder as ``POST /api/open/v1/speech/tts``: same planner, render chain, billing and limits.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from openfish.api.bodies import WholeNumber, body_schema, read_model
from openfish.api.deps import CurrentAccount, ServicesDep
from openfish.api.envelopes import FishErrorBody, error_responses
from openfish.api.tts import AUDIO_RESPONSE, Number, TtsResponderDep, clean_text
from openfish.container import Services
from openfish.paths import FISH_TTS
from openfish.services.tts.fish_request import FishTts
from openfish.services.tts.planner import TtsRequest
from openfish.services.voices.uploads import Upload

#: The OpenAPI tag of every Fish Audio API path.
FISH_TAG = "fish-audio"
router = APIRouter(tags=[FISH_TAG])

FishFormat = Literal["mp3", "wav", "pcm", "opus"]
#: Output rates a request may ask for (opus is always 48 kHz; see ``services/tts/fish_request.py``).
SampleRate = Literal[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]
Unit = Annotated[float, Field(strict=True, ge=0, le=1)]
_IGNORED = "Accepted; the engines here have no sampling to tune, so it changes nothing."


class FishProsody(BaseModel):
    """Speed and volume of the speech."""

    model_config = ConfigDict(extra="forbid")

    speed: Number = Field(default=1.0, ge=0.5, le=2.0, description="Tempo factor; pitch is kept.")
    volume: Number = Field(default=0.0, ge=-20, le=20, description="Gain in dB.")
    normalize_loudness: StrictBool = Field(default=True, description="Accepted; changes nothing.")


class FishReference(BaseModel):
    """Reference audio with its transcript (zero-shot cloning)."""

    model_config = ConfigDict(extra="forbid")

    audio: bytes
    text: str


class FishTtsBody(BaseModel):
    """A Fish Audio TTS request, every field its SDKs send (``fishaudio.TTSRequest``)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="What to say.")
    reference_id: str | None = Field(
        default=None, max_length=200, description="A voice id: a model from /model or a built-in voice."
    )
    references: list[FishReference] = Field(
        default_factory=list,
        description="Zero-shot cloning: clips of one speaker (MessagePack binary; the rules of voice "
        "uploads apply), spoken toward for this request. Analysed once per account and audio. "
        "Not together with reference_id.",
    )
    prosody: FishProsody | None = None
    format: FishFormat = "mp3"
    sample_rate: SampleRate | None = Field(
        default=None, description="Output rate (mp3, wav, pcm); opus is always 48 kHz. None: the voice's own."
    )
    mp3_bitrate: Literal[64, 128, 192] = Field(default=128, description="kbps, for format mp3.")
    opus_bitrate: Literal[-1000, 24, 32, 48, 64] = Field(
        default=32, description="kbps, for format opus; -1000: automatic (48)."
    )
    chunk_length: WholeNumber = Field(
        default=200, ge=100, le=300, description="Longest piece (characters) the text is cut into."
    )
    latency: Literal["normal", "balanced", "low"] = Field(
        default="balanced", description="balanced/low: a short first piece, so audio starts sooner."
    )
    normalize: StrictBool = Field(
        default=True, description="Accepted; the engines always read numbers and abbreviations."
    )
    temperature: Unit = Field(default=0.7, description=_IGNORED)
    top_p: Unit = Field(default=0.7, description=_IGNORED)
    max_new_tokens: WholeNumber = Field(default=1024, ge=0, description=_IGNORED)
    repetition_penalty: Number = Field(default=1.2, ge=0, le=10, description=_IGNORED)
    min_chunk_length: WholeNumber = Field(default=50, ge=0, le=300, description=_IGNORED)
    condition_on_previous_chunks: StrictBool = Field(default=True, description=_IGNORED)
    early_stop_threshold: Number = Field(default=1.0, ge=0, le=1, description=_IGNORED)

    @field_validator("text")
    @classmethod
    def _speakable(cls, text: str) -> str:
        return clean_text(text)

    @model_validator(mode="after")
    def _one_voice(self) -> FishTtsBody:
        if self.references and self.reference_id:
            raise ValueError("give reference_id or references, not both")
        return self

    async def request(self, model: str | None, account_id: str, services: Services) -> TtsRequest:
        """Our TTS request for this body and the ``model`` header (``references`` analysed into
        the account's inline voice first: 400/422 if they are not usable speech)."""
        voice = self.reference_id
        if self.references:
            clips = [Upload(filename="", data=reference.audio) for reference in self.references]
            voice = await services.conversions.inline_voice(account_id, clips)
        return self.speech(voice).to_request(model, services.settings.tts)

    def speech(self, voice: str | None) -> FishTts:
        """The fields that decide what is said and how it is delivered, in ``voice``."""
        prosody = self.prosody or FishProsody()
        return FishTts(
            text=self.text,
            reference_id=voice,
            speed=prosody.speed,
            volume=prosody.volume,
            format=self.format,
            sample_rate=self.sample_rate,
            mp3_bitrate=self.mp3_bitrate,
            opus_bitrate=self.opus_bitrate,
            chunk_length=self.chunk_length,
            latency=self.latency,
        )


#: The ``model`` header (``s2.1-pro``, ``s1``, ``speech-1.6``…): which version speaks; see
#: ``docs/clients.md``.
ModelHeader = Annotated[
    str | None,
    Header(
        alias="model", max_length=40, description="s2.1-pro (default), s2-pro, s1, speech-1.6, speech-1.5…"
    ),
]


_STREAMED = AUDIO_RESPONSE[200]
_AUDIO_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The audio, streamed as it is synthesized (chunked). A stream that fails after it "
        "started ends without its final chunk, which HTTP clients report as an error.",
        "headers": _STREAMED["headers"],
        "content": _STREAMED["content"],
    }
}


@router.post(
    FISH_TTS,
    response_class=StreamingResponse,
    responses={**_AUDIO_RESPONSE, **error_responses(402, 404, 409, 415, 503, envelope=FishErrorBody)},
    openapi_extra=body_schema(FishTtsBody),
)
async def fish_tts(
    request: Request,
    principal: CurrentAccount,
    tts: TtsResponderDep,
    services: ServicesDep,
    model: ModelHeader = None,
) -> StreamingResponse:
    """Synthesize speech (Fish Audio API); the audio streams back as it is made."""
    body = await read_model(request, FishTtsBody)
    speech = await body.request(model, principal.account_id, services)
    return await tts.stream(request, speech, principal.account_id)

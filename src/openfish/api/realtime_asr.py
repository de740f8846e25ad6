"""Realtime ASR over WebSocket: ``/api/open/v1/speech/transcriptions/live``.

``start`` (language, sample rate, encoding, model, words) → ``ready``; then audio — binary frames of
16-bit little-endian mono PCM in JSON framing, ``{"event": "audio", "audio": <bin>}`` in MessagePack
framing; the server sends ``partial`` transcripts while someone speaks (at most about once a
second), a ``final`` per utterance (cut by VAD) with its start and end, and on ``stop`` the last
``final`` and ``finish``. A new ``start`` may follow on the same socket.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, WebSocket
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool

from openfish.api.bodies import WholeNumber, validate_model
from openfish.api.schema import SocketDoc
from openfish.api.sockets import Conversation, Message, RealtimeSocket, serve_socket
from openfish.container import Services
from openfish.errors import Conflict, InsufficientCredits, InvalidRequest, OpenfishError
from openfish.services.accounts.accounts import Principal
from openfish.services.asr.live import FinalTranscript, LiveEvent
from openfish.services.asr.sessions import RATE, SAMPLE_RATES, LiveListening

router = APIRouter()
V1_PATH = "/api/open/v1/speech/transcriptions/live"
FEATURE = "realtime_asr"


class LiveAsrStart(BaseModel):
    """How the client's audio is encoded and what to listen for."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field(default="auto", pattern=r"^(auto|[A-Za-z]{2,3})$")
    sample_rate: WholeNumber = Field(
        default=RATE, validation_alias=AliasChoices("sample_rate", "sampleRate"), description="Hz."
    )
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    model: str | None = Field(default=None, max_length=60)
    words: StrictBool = Field(default=False, description="Word timestamps in each final.")


class AsrConversation(Conversation):
    """One realtime ASR socket: streams one after another."""

    def __init__(self, socket: RealtimeSocket, principal: Principal, services: Services) -> None:
        super().__init__(socket, principal, services)
        self._stream: LiveListening | None = None

    async def _after_error(self, error: OpenfishError) -> None:
        # Bad messages leave the stream as it was; running out of credits ends it.
        if isinstance(error, InsufficientCredits):
            await self._end("error")

    async def _handle(self, message: Message) -> bool:
        if message.event is None or message.event == "audio":
            await self._audio(message)
        elif message.event == "start":
            await self._start(message)
        elif message.event == "stop":
            if self._stream is None:
                raise Conflict("`stop` needs an open stream; send `start` first")
            await self._stream.finish()
            await self._end("stop")
        else:
            raise InvalidRequest(f"unknown event {message.event!r}; expected start, audio or stop")
        return False

    async def _start(self, message: Message) -> None:
        if self._stream is not None:
            raise Conflict("a stream is already open; send `stop` first")
        fields = {k: v for k, v in message.data.items() if k != "event"}
        body = validate_model(LiveAsrStart, fields)
        if body.sample_rate not in SAMPLE_RATES:
            raise InvalidRequest(f"sample_rate: must be one of {', '.join(map(str, SAMPLE_RATES))}")
        self._stream = self._services.live_listening.open(
            self._principal.account_id,
            self._emit,
            language=body.language,
            model=body.model,
            words=body.words,
            sample_rate=body.sample_rate,
        )
        self._socket.framing = message.framing
        self._socket.started = True
        await self._socket.send_event("ready", sample_rate=body.sample_rate, encoding=body.encoding)

    async def _audio(self, message: Message) -> None:
        if self._stream is None:
            raise Conflict("audio needs an open stream; send `start` first")
        pcm = message.payload if message.event is None else message.data.get("audio")
        if not isinstance(pcm, bytes):
            raise InvalidRequest("audio: must be binary (16-bit little-endian PCM)")
        await self._stream.feed(pcm)

    async def _emit(self, event: LiveEvent) -> None:
        if isinstance(event, FinalTranscript):
            fields: dict[str, Any] = {
                "text": event.text,
                "start": round(event.start, 3),
                "end": round(event.end, 3),
                "language": event.language,
            }
            if event.words is not None:
                fields["words"] = [
                    {
                        "start": round(w.start, 3),
                        "end": round(w.end, 3),
                        "word": w.text,
                        "probability": w.probability,
                    }
                    for w in event.words
                ]
            await self._socket.send_event("final", **fields)
        else:
            await self._socket.send_event("partial", text=event.text, start=round(event.start, 3))

    async def _end(self, reason: str) -> None:
        stream = self._stream
        if stream is None:
            return
        self._stream = None
        self._socket.started = False
        await stream.aclose()
        await stream.meter.settle()
        await self._socket.send_event(
            "finish",
            reason=reason,
            duration=round(stream.seconds, 3),
            credits_used=stream.meter.used,
        )

    async def _abandon(self) -> None:
        stream = self._stream
        if stream is None:
            return
        self._stream = None
        await stream.aclose()
        await stream.meter.settle()


@router.websocket(V1_PATH)
async def realtime_asr(websocket: WebSocket) -> None:
    """Realtime ASR: token in the Authorization header; PCM in, transcripts out."""
    await serve_socket(websocket, feature=FEATURE, legacy=False, conversation=AsrConversation)


#: The socket this module serves, for the schema's ``x-websockets`` list.
SOCKETS: dict[str, SocketDoc] = {V1_PATH: (realtime_asr, LiveAsrStart)}

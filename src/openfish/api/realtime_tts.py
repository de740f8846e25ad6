"""Realtime TTS over WebSocket: ``/api/open/v1/speech/tts/live`` and the legacy
``/api/open/tts/live`` (token in the query, the old service's events).

v1: ``start`` (TTS fields, flat or under ``request``) → any number of ``text`` → ``flush`` → ``stop``;
the server sends audio as each clause is made and ``finish`` (reason ``stop`` or ``error``) when a
stream ends; a new ``start`` may follow on the same socket.

Legacy: ``connected`` on open; ``start`` → ``ready``; each ``text`` → ``processing``, its audio (an
``audio`` event with metadata, then the binary frame) and ``done``; ``stop`` → ``stopped``, close.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import Field, model_validator

from openfish.api.bodies import validate_model
from openfish.api.schema import SocketDoc
from openfish.api.sockets import Conversation, Message, RealtimeSocket, serve_socket
from openfish.api.tts import TtsBody
from openfish.container import Services
from openfish.errors import Conflict, InvalidRequest, OpenfishError
from openfish.paths import LEGACY, V1
from openfish.services.accounts.accounts import Principal
from openfish.services.accounts.sessions import TTS_SURFACE, CreditMeter
from openfish.services.tts.live import LiveSpeech
from openfish.services.tts.planner import TtsRequest

router = APIRouter(prefix=V1)
legacy_router = APIRouter(prefix=LEGACY, tags=["legacy"])
V1_PATH = f"{V1}/speech/tts/live"
LEGACY_PATH = f"{LEGACY}/tts/live"
FEATURE = "realtime_tts"


class LiveTtsStart(TtsBody):
    """How a realtime stream speaks; ``text`` may be empty (it arrives in ``text`` events)."""

    text: str = Field(default="", description="Text to start with (optional).")

    @model_validator(mode="after")
    def _no_cache(self) -> LiveTtsStart:
        if self.cache:
            raise ValueError("cache: realtime audio is streamed, never stored")
        return self


class LegacyLiveTtsStart(LiveTtsStart):
    """Legacy streams name their voice as ``reference_id``, as the legacy TTS path does."""

    reference_id: str = Field(min_length=1, max_length=200)


class _Stream:
    """The open stream of a conversation: what makes the audio and what it costs."""

    def __init__(self, speech: LiveSpeech, meter: CreditMeter) -> None:
        self.speech = speech
        self.meter = meter
        self.sequence = 0


class TtsConversation(Conversation):
    """One realtime TTS socket: streams one after another, events in and out."""

    def __init__(self, socket: RealtimeSocket, principal: Principal, services: Services) -> None:
        super().__init__(socket, principal, services)
        self._stream: _Stream | None = None
        self._legacy = socket.legacy

    async def _greet(self) -> None:
        if self._legacy:
            await self._socket.send_event("connected", requestId=self._socket.request_id)

    def _busy(self) -> bool:
        return self._stream is not None and self._stream.speech.busy

    async def _handle(self, message: Message) -> bool:
        """Act on one message; True when the conversation is over."""
        event = message.event
        if event == "start":
            await self._start(message)
            return False
        stream = self._stream
        if event not in ("text", "flush", "stop"):
            raise InvalidRequest(f"unknown event {event!r}; expected start, text, flush or stop")
        if stream is None:
            raise Conflict(f"`{event}` needs an open stream; send `start` first")
        if event == "text":
            text = message.data.get("text")
            if not isinstance(text, str):
                raise InvalidRequest("text: must be a string")
            await stream.speech.add(text)
            if self._legacy:
                await self._socket.send_event("processing", characters=len(text))
                await stream.speech.flush(then=self._done)
        elif event == "flush":
            await stream.speech.flush()
        else:
            return await self._stop(stream)
        return False

    async def _start(self, message: Message) -> None:
        if self._stream is not None:
            raise Conflict("a stream is already open; send `stop` first")
        fields = message.data.get("request", {k: v for k, v in message.data.items() if k != "event"})
        if not isinstance(fields, dict):
            raise InvalidRequest("request: must be an object")
        request = await self._request(fields)
        services = self._services
        plan = await services.synthesis.plan_stream(self._principal.account_id, request)
        price = services.settings.tts.credits_per_character
        meter = CreditMeter(
            services.billing,
            self._principal.account_id,
            TTS_SURFACE,
            block=services.settings.realtime.tts_hold_chars * price,
            prefix="rtts",
        )
        self._socket.framing = message.framing
        self._socket.started = True
        speech = LiveSpeech(
            plan,
            services.pool,
            meter,
            services.settings.realtime,
            credits_per_character=price,
            send=self._send_audio,
            on_failure=self._failed,
            on_spoken=lambda: services.synthesis.count_task(self._principal.account_id, plan.named_voice),
        )
        self._stream = _Stream(speech, meter)
        if self._legacy:
            await self._socket.send_event("ready", format=plan.format, contentType=speech.content_type)
        if request.text:
            await speech.add(request.text)

    async def _request(self, fields: dict[str, Any]) -> TtsRequest:
        """The stream's TTS request from the fields of ``start`` (checked as ``start`` requires)."""
        return validate_model(LegacyLiveTtsStart if self._legacy else LiveTtsStart, fields).to_request()

    async def _send_audio(self, audio: bytes) -> None:
        stream = self._stream
        if not self._legacy or stream is None:
            await self._socket.send_audio(audio)
            return
        stream.sequence += 1
        await self._socket.send_audio(
            audio, sequence=stream.sequence, size=len(audio), contentType=stream.speech.content_type
        )

    async def _done(self) -> None:
        stream = self._stream
        if stream is not None:
            await self._socket.send_event("done", **self._usage(stream))

    async def _stop(self, stream: _Stream) -> bool:
        if not await stream.speech.finish():
            return self._legacy  # the failure was reported and the stream closed
        await stream.meter.settle()
        self._close_stream()
        if self._legacy:
            await self._socket.send_event("stopped", **self._usage(stream))
            return True
        await self._socket.send_event("finish", reason="stop", **self._usage(stream))
        return False

    async def _failed(self, error: OpenfishError) -> None:
        stream = self._stream
        if stream is None:
            return
        await stream.meter.settle()
        self._close_stream()
        await self._socket.send_error(error)
        if not self._legacy:
            await self._socket.send_event("finish", reason="error", **self._usage(stream))
        if error.ws_close is not None:
            await self._socket.close(error.ws_close, error.message)

    def _close_stream(self) -> None:
        self._stream = None
        self._socket.started = False

    @staticmethod
    def _usage(stream: _Stream) -> dict[str, Any]:
        return {"characters_used": stream.meter.units, "credits_used": stream.meter.used}

    async def _abandon(self) -> None:
        stream = self._stream
        if stream is None:
            return
        self._close_stream()
        await stream.speech.aclose()
        await stream.meter.settle()


@router.websocket(V1_PATH.removeprefix(router.prefix))
async def realtime_tts(websocket: WebSocket) -> None:
    """Realtime TTS (v1): token in the Authorization header; JSON or MessagePack framing."""
    await serve_socket(websocket, feature=FEATURE, legacy=False, conversation=TtsConversation)


@legacy_router.websocket(LEGACY_PATH.removeprefix(legacy_router.prefix))
async def legacy_realtime_tts(websocket: WebSocket) -> None:
    """Realtime TTS (legacy events): token in the Authorization header or ``?token=``."""
    await serve_socket(websocket, feature=FEATURE, legacy=True, conversation=TtsConversation)


#: The sockets this module serves, for the schema's ``x-websockets`` list.
SOCKETS: dict[str, SocketDoc] = {
    V1_PATH: (realtime_tts, LiveTtsStart),
    LEGACY_PATH: (legacy_realtime_tts, LegacyLiveTtsStart),
}

"""What every realtime WebSocket shares: authentication, the rollout gate, session slots, framing,
frame-size limits, idle and session timeouts, and errors sent as events with a fitting close code.

Framing: a client speaks JSON (text frames) or MessagePack (binary frames holding a map); the
``start`` of each stream fixes which, and the server answers in the same. In JSON framing, binary
frames carry raw audio (audio out of TTS, PCM into ASR); in MessagePack framing audio travels inside
``{"event": "audio", "audio": <bin>}`` maps.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack
from starlette.websockets import WebSocket, WebSocketDisconnect

from openfish.api.bodies import load_json, unpack_map
from openfish.config import Settings
from openfish.container import Services
from openfish.errors import (
    Forbidden,
    InternalError,
    InvalidRequest,
    OpenfishError,
    PayloadTooLarge,
    TimedOut,
    Unauthorized,
    legacy_body,
)
from openfish.middleware import note_account, request_id_of
from openfish.services.accounts.accounts import Principal

logger = logging.getLogger("openfish.realtime")


class Framing(StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


@dataclass(frozen=True)
class Message:
    """One frame from the client: an event (``event`` and its fields) or, in JSON framing, raw bytes."""

    framing: Framing
    event: str | None
    data: dict[str, Any] = field(default_factory=dict)
    payload: bytes | None = None


class ClientGone(Exception):
    """The client closed the socket or the connection dropped."""


class RealtimeSocket:
    """A realtime WebSocket after the handshake: typed receive and send, one writer at a time."""

    def __init__(self, websocket: WebSocket, services: Services, *, legacy: bool) -> None:
        self._ws = websocket
        self._settings = services.settings.realtime
        self.legacy = legacy
        self.framing = Framing.JSON
        self._lock = asyncio.Lock()
        self.request_id = request_id_of(websocket.scope)
        #: Whether a stream is open (binary frames are then audio in JSON framing).
        self.started = False

    async def receive(self, busy: Callable[[], bool] = lambda: False) -> Message:
        """The next frame. Raises TimedOut after ``idle_timeout_seconds`` without one unless ``busy()``
        (the server is still working for the client), ClientGone when the client left."""
        while True:
            try:
                async with asyncio.timeout(self._settings.idle_timeout_seconds):
                    raw = await self._ws.receive()
                break
            except TimeoutError:
                if not busy():
                    raise TimedOut(
                        f"no message for {self._settings.idle_timeout_seconds:g} seconds; closing"
                    ) from None
        if raw["type"] == "websocket.disconnect":
            raise ClientGone
        text, data = raw.get("text"), raw.get("bytes")
        size = len(data) if data is not None else len((text or "").encode())
        if size > self._settings.max_message_bytes:
            raise PayloadTooLarge(f"frames are limited to {self._settings.max_message_bytes} bytes")
        if text is not None:
            return self._event(Framing.JSON, _json_object(text))
        if data is None:
            raise InvalidRequest("empty frame")
        if self.framing is Framing.JSON and self.started:
            return Message(Framing.JSON, None, payload=data)
        return self._event(Framing.MSGPACK, unpack_map(data, "the message"))

    async def send_event(self, event: str, **fields: Any) -> None:
        """An event in the stream's framing."""
        async with self._lock:
            await self._send_event({"event": event, **fields})

    async def send_audio(self, audio: bytes, **metadata: Any) -> None:
        """Encoded audio: a binary frame (JSON framing) or an ``audio`` event (MessagePack). With
        ``metadata``, an ``audio`` event carrying it goes first, then the binary frame (legacy)."""
        if not audio:
            return
        async with self._lock:
            if self.framing is Framing.MSGPACK:
                await self._send_event({"event": "audio", "audio": audio, **metadata})
                return
            if metadata:
                await self._send_event({"event": "audio", **metadata})
            try:
                await self._ws.send_bytes(audio)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise ClientGone from exc

    async def _send_event(self, body: dict[str, Any]) -> None:
        try:
            if self.framing is Framing.MSGPACK:
                await self._ws.send_bytes(msgpack.packb(body, use_bin_type=True))
            else:
                await self._ws.send_text(json.dumps(body, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise ClientGone from exc

    async def send_error(self, error: OpenfishError) -> None:
        """The error as an event: ``{code, message, requestId}`` on v1 sockets, the legacy envelope
        ``{error, details, code}`` on legacy ones (``details``: ``requestId=<id>`` unless the error
        says more)."""
        if self.legacy:
            await self.send_event("error", **legacy_body(error, self.request_id))
        else:
            await self.send_event("error", code=error.code, message=error.message, requestId=self.request_id)

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket (quietly if the client is already gone)."""
        try:
            await self._ws.close(code, reason[:120])
        except (WebSocketDisconnect, RuntimeError, OSError):
            logger.debug("socket already closed (requestId=%s)", self.request_id)

    def _event(self, framing: Framing, data: dict[str, Any]) -> Message:
        event = data.get("event")
        if not isinstance(event, str):
            raise InvalidRequest("every message needs a string `event` field")
        return Message(framing, event, data)


def _json_object(text: str) -> dict[str, Any]:
    value = load_json(text, "the message")
    if not isinstance(value, dict):
        raise InvalidRequest("a JSON message must be an object")
    return value


def websocket_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's WebSocket settings: the sans-I/O protocol (its ``send`` waits while the socket's
    buffer is full, which is the backpressure a slow client needs) and a protocol-level frame cap
    above ours, so an oversized frame normally gets our error event before the close."""
    return {"ws": "websockets-sansio", "ws_max_size": 2 * settings.realtime.max_message_bytes}


class Conversation(ABC):
    """What runs on an accepted, authenticated and admitted socket: the loop every realtime
    conversation shares — receive, handle, answer a correctable mistake with an error event and go
    on, raise one that ends the socket — and, however it ends, abandon what is still open."""

    def __init__(self, socket: RealtimeSocket, principal: Principal, services: Services) -> None:
        self._socket = socket
        self._principal = principal
        self._services = services

    async def run(self) -> None:
        """Serve the client until it leaves (or the conversation ends); raise to close with an error."""
        try:
            await self._greet()
            while True:
                try:
                    if await self._handle(await self._socket.receive(busy=self._busy)):
                        return
                except OpenfishError as error:
                    if error.ws_close is not None:
                        raise
                    await self._socket.send_error(error)
                    await self._after_error(error)
        finally:
            await self._abandon()

    async def _greet(self) -> None:  # noqa: B027 (an optional hook, empty by design)
        """Events sent before the first message is read (none by default)."""

    def _busy(self) -> bool:
        """Whether the server is still working for the client (an idle socket is then kept)."""
        return False

    @abstractmethod
    async def _handle(self, message: Message) -> bool:
        """Act on one message; True when the conversation is over."""

    async def _after_error(self, error: OpenfishError) -> None:  # noqa: B027 (an optional hook)
        """What an error that keeps the socket open does to the conversation (nothing by default)."""

    @abstractmethod
    async def _abandon(self) -> None:
        """Stop whatever is still open, settling its credits (the client left, or the socket ends)."""


#: Builds the conversation of one socket (the conversation classes themselves).
ConversationFactory = Callable[[RealtimeSocket, Principal, Services], Conversation]


async def serve_socket(
    websocket: WebSocket,
    *,
    feature: str,
    legacy: bool,
    conversation: ConversationFactory,
    framing: Framing = Framing.JSON,
) -> None:
    """Accept, authenticate, gate and run one realtime socket; every way it can end is handled here.

    v1 sockets take the token from ``Authorization: Bearer``; legacy ones also from ``?token=``.
    ``framing`` is that of what is sent before a stream's ``start`` fixes it (errors, greetings).
    """
    services: Services = websocket.app.state.services
    socket = RealtimeSocket(websocket, services, legacy=legacy)
    socket.framing = framing
    await websocket.accept(headers=[(b"x-request-id", socket.request_id.encode())])
    error: OpenfishError | None = None
    try:
        principal = await _authenticate(websocket, services, legacy=legacy)
        note_account(websocket.scope, principal.account_id)
        if not principal.has_feature(feature):
            raise Forbidden(f"realtime is not enabled for this account (feature flag `{feature}` is off)")
        tier = services.settings.tiers.get(principal.tier) or next(iter(services.settings.tiers.values()))
        async with services.realtime_slots.hold(principal.account_id, tier):
            limit = services.settings.realtime.max_session_seconds
            try:
                async with asyncio.timeout(limit):
                    await conversation(socket, principal, services).run()
            except TimeoutError:
                error = TimedOut(f"sessions last at most {limit:g} seconds; closing")
    except ClientGone:
        return
    except OpenfishError as raised:
        error = raised
    except Exception:
        logger.exception("realtime session failed (requestId=%s)", socket.request_id)
        error = InternalError(f"An internal error occurred (requestId {socket.request_id}).")
    if error is None:
        await socket.close(1000)
        return
    try:
        await socket.send_error(error)
    except ClientGone:
        return
    await socket.close(error.ws_close or 1008, error.message)


async def _authenticate(websocket: WebSocket, services: Services, *, legacy: bool) -> Principal:
    header = websocket.headers.get("authorization")
    token: str | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("The Authorization header must be `Bearer <token>`.")
        token = value.strip()
    elif legacy:
        token = websocket.query_params.get("token")
    if not token:
        where = "an `Authorization: Bearer <token>` header" + (" or `?token=`" if legacy else "")
        raise Unauthorized(f"{where} is required.")
    return await services.accounts.authenticate(token)

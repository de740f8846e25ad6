"""The official Fish Audio API's realtime TTS, ``WS /v1/tts/live`` at the server root, as the
``fish-audio-sdk`` clients speak it: MessagePack frames, ``start`` (the TTS request under
``request``; the handshake's ``model`` header picks the version) → ``text`` … ``flush`` → ``stop``;
the server answers ``{"event": "audio", "audio": <bin>}`` as each clause is made and ``finish``
(reason ``stop``, or ``error`` after an ``error`` event — also when ``start`` itself is refused).

The conversation is our realtime TTS (``api/realtime_tts.py``): the same clause cutting, render
chain, credit holds, session limits and the ``realtime_tts`` rollout flag; only the ``start``
request is read in the Fish Audio API's fields.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import Field

from openfish.api.bodies import validate_model
from openfish.api.fish_tts import FishTtsBody
from openfish.api.realtime_tts import FEATURE, TtsConversation
from openfish.api.schema import SocketDoc
from openfish.api.sockets import Framing, RealtimeSocket, serve_socket
from openfish.container import Services
from openfish.errors import OpenfishError
from openfish.paths import FISH_TTS
from openfish.services.accounts.accounts import Principal
from openfish.services.tts.planner import TtsRequest

router = APIRouter()
PATH = f"{FISH_TTS}/live"


class FishLiveStart(FishTtsBody):
    """How a realtime stream speaks (the ``request`` of ``start``); its text usually arrives later."""

    text: str = Field(default="", description="Text to start with (the SDKs send an empty one).")


class FishTtsConversation(TtsConversation):
    """Our realtime TTS conversation, its ``start`` read as a Fish Audio TTS request."""

    def __init__(
        self, socket: RealtimeSocket, principal: Principal, services: Services, model: str | None
    ) -> None:
        super().__init__(socket, principal, services)
        self._model = model

    async def _request(self, fields: dict[str, Any]) -> TtsRequest:
        body = validate_model(FishLiveStart, fields)
        return await body.request(self._model, self._principal.account_id, self._services)

    async def _after_error(self, error: OpenfishError) -> None:
        # The SDKs read only `audio` and `finish`: a `start` that was refused (or any message while
        # no stream is open) must end in a `finish` they see, or they would wait for audio forever.
        if self._stream is None:
            await self._socket.send_event("finish", reason="error")


@router.websocket(PATH)
async def fish_tts_live(websocket: WebSocket) -> None:
    """Realtime TTS (Fish Audio API): token in the Authorization header; MessagePack framing."""
    model = websocket.headers.get("model")

    def conversation(socket: RealtimeSocket, principal: Principal, services: Services) -> FishTtsConversation:
        return FishTtsConversation(socket, principal, services, model)

    await serve_socket(
        websocket, feature=FEATURE, legacy=False, conversation=conversation, framing=Framing.MSGPACK
    )


#: The socket this module serves, for the schema's ``x-websockets`` list.
SOCKETS: dict[str, SocketDoc] = {PATH: (fish_tts_live, FishLiveStart)}

"""A small realtime WebSocket client for the tests: JSON or MessagePack framing, events and audio."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Caller


def open_socket(url: str, caller: Caller | None = None, headers: dict[str, str] | None = None) -> Any:
    """``async with open_socket(...) as ws`` — authenticated with the caller's bearer token."""
    sent = dict(headers or {})
    if caller:
        sent["Authorization"] = f"Bearer {caller.token}"
    return connect(url, additional_headers=sent, max_size=None, open_timeout=10)


async def send_json(ws: ClientConnection, event: str, **fields: Any) -> None:
    await ws.send(json.dumps({"event": event, **fields}))


async def send_msgpack(ws: ClientConnection, event: str, **fields: Any) -> None:
    await ws.send(msgpack.packb({"event": event, **fields}, use_bin_type=True))


def parse(frame: str | bytes, framing: str = "json") -> dict[str, Any]:
    """An event frame as a dict; a raw binary frame (JSON framing) as ``{"event": "binary"}``."""
    if isinstance(frame, str):
        value: dict[str, Any] = json.loads(frame)
        return value
    if framing == "msgpack":
        unpacked: dict[str, Any] = msgpack.unpackb(frame, raw=False)
        return unpacked
    return {"event": "binary", "audio": frame}


@dataclass
class Received:
    """Everything a stream sent until (and including) the event that ended it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)

    def last(self) -> dict[str, Any]:
        return self.events[-1]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == name]


async def collect(ws: ClientConnection, until: str | tuple[str, ...], framing: str = "json") -> Received:
    """Receive frames until an event named ``until`` (or ``error`` not followed by more)."""
    ends = (until,) if isinstance(until, str) else until
    received = Received()
    async for frame in ws:
        event = parse(frame, framing)
        if event["event"] in ("binary", "audio") and "audio" in event:
            received.audio += event["audio"]
        received.events.append(event)
        if event["event"] in ends:
            break
    return received

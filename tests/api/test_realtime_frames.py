"""Whatever a client sends on a realtime socket, the server answers with events, never an internal
error: deeply nested documents are refused like any malformed message, and generated frames
(hypothesis) never close a socket with 1011."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.api.realtime_client import collect, open_socket, parse, send_json
from tests.conftest import Caller, Harness

Serve = Callable[[Harness], Awaitable[str]]
TTS = "/api/open/v1/speech/tts/live"
LEGACY = "/api/open/tts/live"
ASR = "/api/open/v1/speech/transcriptions/live"
SOCKETS = [TTS, LEGACY, ASR]
FEATURES = ("realtime_tts", "realtime_asr")


def nested_json(depth: int) -> str:
    return '{"event": "x", "a": ' + "[" * depth + "]" * depth + "}"


def nested_msgpack(depth: int) -> bytes:
    # A map of two entries, "event": "x" and "a": `depth` nested one-element arrays around nil (built
    # by hand: the packer itself refuses to nest that deep).
    event: bytes = msgpack.packb({"event": "x"})
    return b"\x82" + event[1:] + b"\xa1a" + b"\x91" * depth + b"\xc0"


def connect(base: str, path: str, caller: Caller) -> Any:
    """The socket at ``path`` (``async with``); legacy logs in with ``?token=`` as its clients do."""
    return open_socket(f"{base}{path}?token={caller.token}" if path == LEGACY else base + path, caller)


async def greeting(ws: ClientConnection, path: str) -> None:
    if path == LEGACY:
        assert parse(await ws.recv())["event"] == "connected"


async def still_serves(ws: ClientConnection, path: str) -> None:
    """A real exchange on the socket, proving it is still usable."""
    if path == TTS:
        await send_json(ws, "start", format="pcm")
        await send_json(ws, "text", text="Still here.")
        await send_json(ws, "stop")
        assert (await collect(ws, "finish")).last()["characters_used"] == len("Still here.")
    elif path == LEGACY:
        await send_json(ws, "start", reference_id="en_US-joe-medium", format="pcm")
        assert parse(await ws.recv())["event"] == "ready"
    else:
        await send_json(ws, "start", language="en", sample_rate=16000)
        assert parse(await ws.recv())["event"] == "ready"


@pytest.mark.parametrize("path", SOCKETS)
async def test_deeply_nested_messages_are_refused_and_the_socket_goes_on(
    harness_factory: Callable[..., Any], serve: Serve, path: str
) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    caller = await harness.new_caller(features=FEATURES)
    async with connect(base, path, caller) as ws:
        await greeting(ws, path)
        for frame in (nested_json(1000), nested_json(100_000), nested_json(40), nested_msgpack(40)):
            await ws.send(frame)
            error = parse(await ws.recv())
            assert error["event"] == "error"
            assert error["code"] == "invalid_request", error
        await ws.send(nested_msgpack(5000))
        error = parse(await ws.recv())
        assert error["code"] == "invalid_request", error
        await still_serves(ws, path)


# Generated messages: mostly the events the sockets know, with fields of every JSON type.
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_FIELDS = st.sampled_from(
    [
        "text",
        "format",
        "language",
        "sample_rate",
        "encoding",
        "voiceId",
        "reference_id",
        "speed",
        "request",
        "audio",
        "model",
        "words",
        "volume",
    ]
)
_EVENTS = st.sampled_from(["start", "text", "flush", "stop", "audio", "x"]) | st.text(max_size=10) | _SCALARS
_MESSAGES = st.fixed_dictionaries({"event": _EVENTS}, optional={}).flatmap(
    lambda head: st.dictionaries(_FIELDS, _VALUES, max_size=4).map(lambda rest: {**rest, **head})
)
_FRAMES = (
    _MESSAGES.map(json.dumps)
    | _MESSAGES.map(lambda message: msgpack.packb(message, use_bin_type=True))
    | st.binary(max_size=64)
    | st.text(max_size=64)
)


def generated_frames(count: int) -> list[str | bytes]:
    """``count`` frames from the strategies above, the same ones every run."""
    frames: list[str | bytes] = []

    @settings(max_examples=count, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(_FRAMES)
    def gather(frame: str | bytes) -> None:
        frames.append(frame)

    gather()
    return frames


PROBE = json.dumps({"event": "probe-0f1e"})


@pytest.mark.parametrize("path", SOCKETS)
async def test_generated_frames_never_cause_an_internal_error(
    harness_factory: Callable[..., Any], serve: Serve, path: str
) -> None:
    harness: Harness = await harness_factory()
    base = await serve(harness)
    caller = await harness.new_caller(credits=10**6, features=FEATURES)
    frames = generated_frames(120)
    ws: Any = None
    answered = 0
    try:
        for frame in frames:
            if ws is None:
                ws = await connect(base, path, caller).__aenter__()
                await greeting(ws, path)
            try:
                await ws.send(frame)
                # The probe is an unknown event: its error marks the end of the frame's answers.
                await ws.send(PROBE)
                while True:
                    event = parse(await ws.recv())
                    assert event.get("code") != "internal_error", (frame, event)
                    if event["event"] == "error" and "probe-0f1e" in str(event):
                        break
                answered += 1
            except ConnectionClosed:
                # Ending a socket is allowed (stop on legacy, a refused stream), crashing it is not.
                assert ws.close_code != 1011, (frame, ws.close_reason)
                ws = None
    finally:
        if ws is not None:
            await ws.close()
    assert answered > len(frames) // 2

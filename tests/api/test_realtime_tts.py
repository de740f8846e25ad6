"""Realtime TTS over a real WebSocket: conversations, framings, billing, refusals and limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from openfish.audio.decode import decode_audio
from openfish.store.models import CreditHold
from tests.api.realtime_client import collect, open_socket, parse, send_json, send_msgpack
from tests.conftest import Caller, Harness

V1 = "/api/open/v1/speech/tts/live"
LEGACY = "/api/open/tts/live"
Serve = Callable[[Harness], Awaitable[str]]


async def live(harness_factory: Callable[..., Any], serve: Serve, **overrides: Any) -> tuple[Harness, str]:
    harness: Harness = await harness_factory(**overrides)
    return harness, await serve(harness)


async def open_holds(harness: Harness) -> list[CreditHold]:
    async with harness.services.db.session() as session:
        return list((await session.scalars(select(CreditHold).where(CreditHold.status == "held"))).all())


def pcm_seconds(audio: bytes) -> float:
    return len(audio) / 2 / 22050


async def test_conversation_streams_clauses_and_charges_what_was_spoken(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    first, rest = "Hello there, my good friend. ", "How are you today? I hope you are well"
    async with open_socket(base + V1, caller) as ws:
        await send_json(ws, "start", request={"format": "pcm", "voiceId": "en_US-joe-medium"})
        await send_json(ws, "text", text=first)
        # The first clause is spoken before any more text is sent: no flush, no stop.
        frame = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(frame, bytes)
        assert len(frame) > 4410
        for fragment in rest.split(" "):
            await send_json(ws, "text", text=fragment + " ")
        await send_json(ws, "stop")
        got = await collect(ws, "finish")
    # Billed: the characters of the clauses spoken ("Hello there," "my good friend." "How are you
    # today?" "I hope you are well"), not the spaces between them.
    assert got.last() == {"event": "finish", "reason": "stop", "characters_used": 64, "credits_used": 64}
    seconds = pcm_seconds(frame + got.audio)
    assert 3.0 < seconds < 8.0
    assert np.abs(np.frombuffer(frame + got.audio, "<i2")).max() > 3000  # speech, not silence
    assert await harness.balance(caller.account_id) == 1000 - 64
    assert await open_holds(harness) == []


async def test_msgpack_framing_and_a_second_stream_on_the_same_socket(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await send_msgpack(ws, "start", request={"format": "wav", "text": "Good morning. "})
        await send_msgpack(ws, "flush")
        await send_msgpack(ws, "stop")
        first = await collect(ws, "finish", framing="msgpack")
        await send_json(ws, "start", format="mp3", text="And good night.")
        await send_json(ws, "stop")
        second = await collect(ws, "finish")
    assert [e["event"] for e in first.events][-1] == "finish"
    assert all(e["event"] == "audio" for e in first.events[:-1])
    wav = decode_audio(bytes(first.audio))
    assert 0.5 < wav.duration_seconds < 3.0
    mp3 = decode_audio(bytes(second.audio))
    assert 0.5 < mp3.duration_seconds < 3.0
    assert first.last()["characters_used"] == len("Good morning.")
    assert second.last()["characters_used"] == len("And good night.")
    assert await harness.balance(caller.account_id) == 1000 - len("Good morning.") - len("And good night.")


@pytest.mark.parametrize("fmt", ["aac", "flac"])
async def test_aac_and_flac_streams_are_one_file(
    harness_factory: Callable[..., Any], serve: Serve, fmt: str
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await send_json(ws, "start", format=fmt)
        for clause in ("Good morning, everyone. ", "The train leaves at nine."):
            await send_json(ws, "text", text=clause)
        await send_json(ws, "stop")
        got = await collect(ws, "finish")
    assert 1.5 < decode_audio(bytes(got.audio)).duration_seconds < 6.0


async def test_account_without_the_flag_is_refused(harness_factory: Callable[..., Any], serve: Serve) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller()
    async with open_socket(base + V1, caller) as ws:
        event = parse(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert event["event"] == "error"
    assert event["code"] == "forbidden"
    assert "realtime_tts" in event["message"]
    assert ws.close_code == 1008


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer ofk_tok_nope_nope"}, {"Authorization": "Basic x"}]
)
async def test_missing_or_bad_token_is_refused(
    harness_factory: Callable[..., Any], serve: Serve, headers: dict[str, str]
) -> None:
    _harness, base = await live(harness_factory, serve)
    async with open_socket(base + V1, headers=headers) as ws:
        event = parse(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert event["code"] == "unauthorized"
    assert ws.close_code == 1008


async def test_malformed_events_get_errors_and_the_socket_goes_on(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await ws.send("{not json")
        await ws.send(b"\xc1\x00")  # not MessagePack
        await ws.send("[1, 2]")
        await send_json(ws, "sing")
        await send_json(ws, "text", text="too early")
        await send_json(ws, "start", request={"speed": 5})
        await send_json(ws, "start", request={"voiceId": "nobody"})
        await send_json(ws, "start", request={"cache": True})
        errors = [parse(await ws.recv()) for _ in range(8)]
        await send_json(ws, "start", format="pcm")
        await send_json(ws, "text", text=7)
        await send_json(ws, "start")
        errors += [parse(await ws.recv()) for _ in range(2)]
        await send_json(ws, "text", text="Still here.")
        await send_json(ws, "stop")
        got = await collect(ws, "finish")
    codes = [e["code"] for e in errors]
    assert codes == ["invalid_request"] * 4 + [
        "conflict",
        "invalid_request",
        "not_found",
        "invalid_request",
    ] + [
        "invalid_request",
        "conflict",
    ]
    assert "speed" in errors[5]["message"]
    assert "cache" in errors[7]["message"]
    assert got.last()["characters_used"] == len("Still here.")
    assert pcm_seconds(bytes(got.audio)) > 0.5
    assert await harness.balance(caller.account_id) == 1000 - len("Still here.")


async def test_abrupt_disconnect_charges_only_what_was_sent(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    sentences = " ".join(f"This is sentence number {n}, spoken slowly." for n in range(1, 30))
    ws = await open_socket(base + V1, caller)
    await send_json(ws, "start", format="pcm")
    await send_json(ws, "text", text=sentences)
    await ws.recv()
    ws.transport.abort()  # no close frame: the connection just drops
    for _ in range(200):
        if (
            not await open_holds(harness)
            and await harness.services.realtime_slots.open_sessions(caller.account_id) == 0
        ):
            break
        await asyncio.sleep(0.05)
    assert await open_holds(harness) == []
    spent = 1000 - await harness.balance(caller.account_id)
    assert 0 < spent < len(sentences)  # what was spoken before the drop, not the whole text


async def test_credits_running_out_ends_the_stream_with_an_error(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(credits=20, features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await send_json(ws, "start", format="pcm")
        await send_json(ws, "text", text="Short one. ")
        await send_json(ws, "text", text="And then a much longer sentence that costs more than is left. ")
        got = await collect(ws, "finish")
    assert got.named("error")[0]["code"] == "insufficient_credits"
    assert got.last()["reason"] == "error"
    assert got.last()["characters_used"] == len("Short one.")
    assert await harness.balance(caller.account_id) == 20 - len("Short one.")


async def test_session_cap_per_account(harness_factory: Callable[..., Any], serve: Serve) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(tier="free", features=("realtime_tts",))
    async with open_socket(base + V1, caller) as first:
        await send_json(first, "start", format="pcm", text="Hello there, friend.")
        await first.recv()  # speaking: the session surely holds its slot
        async with open_socket(base + V1, caller) as second:
            event = parse(await second.recv())
            with pytest.raises(ConnectionClosed):
                await second.recv()
        assert event["code"] == "rate_limited"
        assert second.close_code == 1013
        await send_json(first, "stop")
        assert (await collect(first, "finish")).last()["reason"] == "stop"


async def test_oversized_frames_and_idle_sockets_are_closed(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(
        harness_factory, serve, realtime={"max_message_bytes": 4096, "idle_timeout_seconds": 0.5}
    )
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await send_json(ws, "text", text="x" * 5000)
        event = parse(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert event["code"] == "payload_too_large"
    assert ws.close_code == 1009
    async with open_socket(base + V1, caller) as ws:
        event = parse(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert event["code"] == "timeout"
    assert ws.close_code == 1000


async def test_legacy_events_with_token_in_query(harness_factory: Callable[..., Any], serve: Serve) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(f"{base}{LEGACY}?token={caller.token}") as ws:
        connected = parse(await ws.recv())
        await send_json(ws, "start", reference_id="en_US-joe-medium", format="pcm")
        ready = parse(await ws.recv())
        await send_json(ws, "text", text="Hello from the old days")
        spoken = await collect(ws, "done")
        await send_json(ws, "stop")
        stopped = await collect(ws, "stopped")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert connected["event"] == "connected"
    assert ready["event"] == "ready"
    names = [e["event"] for e in spoken.events]
    assert names[0] == "processing"
    assert names[-1] == "done"
    metadata = [e for e in spoken.events if e["event"] == "audio"]
    binaries = [e for e in spoken.events if e["event"] == "binary"]
    assert metadata
    assert len(metadata) == len(binaries)
    assert [m["size"] for m in metadata] == [len(b["audio"]) for b in binaries]
    assert stopped.last()["characters_used"] == len("Hello from the old days")
    assert ws.close_code == 1000
    assert await harness.balance(caller.account_id) == 1000 - len("Hello from the old days")


async def test_legacy_requires_reference_id_and_answers_in_its_envelope(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve)
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(f"{base}{LEGACY}?token={caller.token}") as ws:
        connected = parse(await ws.recv())
        await send_json(ws, "start", format="pcm")
        event = parse(await ws.recv())
    assert set(event) == {"event", "error", "details", "code"}
    assert event["event"] == "error"
    assert event["code"] == "invalid_request"
    assert "reference_id" in event["error"]
    # As on the legacy HTTP paths: the request id, which is also the handshake's X-Request-Id.
    assert event["details"] == f"requestId={connected['requestId']}"
    assert ws.response.headers["X-Request-Id"] == connected["requestId"]


async def test_v1_ignores_a_token_in_the_query(harness_factory: Callable[..., Any], serve: Serve) -> None:
    harness, base = await live(harness_factory, serve)
    caller: Caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(f"{base}{V1}?token={caller.token}") as ws:
        event = parse(await ws.recv())
    assert event["code"] == "unauthorized"


async def test_a_disabled_realtime_surface_has_no_socket(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve, realtime={"tts": False})
    caller = await harness.new_caller(features=("realtime_tts",))
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(base + V1, caller):
            pass
    assert refused.value.response.status_code == 403  # the handshake is rejected: no such socket


async def test_sessions_end_at_their_maximum_length(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    harness, base = await live(harness_factory, serve, realtime={"max_session_seconds": 1.5})
    caller = await harness.new_caller(features=("realtime_tts",))
    async with open_socket(base + V1, caller) as ws:
        await send_json(ws, "start", format="pcm")
        await send_json(ws, "text", text="Still talking.")
        await send_json(ws, "flush")
        got = await collect(ws, "error")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert got.last()["code"] == "timeout"
    assert ws.close_code == 1000
    assert await open_holds(harness) == []
    assert await harness.balance(caller.account_id) == 1000 - len("Still talking.")

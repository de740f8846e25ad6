"""The Fish Audio API's realtime TTS (``WS /v1/tts/live``) driven by the real ``fish-audio-sdk``
clients over TCP: MessagePack events in, audio events out, billing and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import fish_audio_sdk
import pytest
from fishaudio.exceptions import WebSocketError
from fishaudio.types import FlushEvent, ReferenceAudio, TextEvent

from openfish.services.tts.text_split import LiveTextBuffer
from tests.api.fish_sdk import Clients, Serve, base_url, decoded
from tests.audio_checks import rms_db
from tests.conftest import Harness
from tests.voice_clips import SENTENCES, espeak_wav

FRAGMENTS = [
    "Hello there, ",
    "this is realtime ",
    "speech from openfish. ",
    "It keeps going, ",
    "then stops.",
]


def billed(fragments: list[str]) -> int:
    """Characters a realtime stream bills for these fragments: those of the pieces it speaks."""
    text = LiveTextBuffer()
    pieces = [piece for fragment in fragments for piece in text.add(fragment)] + text.flush()
    return sum(len(piece) for piece in pieces)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus"])
async def test_text_streams_in_and_audio_out(harness: Harness, serve: Serve, sdk: Clients, fmt: str) -> None:
    caller = await harness.new_caller(features=("realtime_tts",))
    fish = sdk.client(caller, await base_url(harness, serve))

    def stream() -> Iterator[str | TextEvent | FlushEvent]:
        yield from FRAGMENTS[:2]
        yield FlushEvent()
        yield from FRAGMENTS[2:]

    chunks = await asyncio.to_thread(
        lambda: list(fish.tts.stream_websocket(stream(), format=fmt, model="s1"))
    )
    assert len(chunks) > 1
    audio = decoded(b"".join(chunks), fmt)
    assert 3 < audio.duration_seconds < 9
    assert rms_db(audio.samples) > -30
    flushed = billed(FRAGMENTS[:2]) + billed(FRAGMENTS[2:])
    assert await harness.balance(caller.account_id) == 1000 - flushed


async def test_inline_references_in_start(harness: Harness, serve: Serve, sdk: Clients) -> None:
    caller = await harness.new_caller(features=("realtime_tts",))
    fish = sdk.client(caller, await base_url(harness, serve))
    references = [ReferenceAudio(audio=espeak_wav(sentence), text=sentence) for sentence in SENTENCES[:2]]
    chunks = await asyncio.to_thread(
        lambda: list(fish.tts.stream_websocket(iter(FRAGMENTS), format="wav", references=references))
    )
    audio = decoded(b"".join(chunks), "wav")
    assert 3 < audio.duration_seconds < 9
    assert rms_db(audio.samples) > -30
    assert await harness.balance(caller.account_id) == 1000 - billed(FRAGMENTS)


async def test_the_older_websocket_session(harness: Harness, serve: Serve) -> None:
    caller = await harness.new_caller(features=("realtime_tts",))
    base = await base_url(harness, serve)
    request = fish_audio_sdk.TTSRequest(text="", format="wav", prosody=fish_audio_sdk.Prosody(speed=1.2))
    with fish_audio_sdk.WebSocketSession(caller.token, base_url=base) as old:
        audio = await asyncio.to_thread(
            lambda: b"".join(old.tts(request, iter(FRAGMENTS), backend="speech-1.6"))
        )
    assert 3 < decoded(audio, "wav").duration_seconds < 8
    assert await harness.balance(caller.account_id) == 1000 - billed(FRAGMENTS)


async def test_failures_end_the_stream_with_the_sdks_error_and_cost_nothing(
    harness: Harness, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    flagged = await harness.new_caller(features=("realtime_tts",))
    unflagged = await harness.new_caller()
    for caller, kwargs in (
        (flagged, {"reference_id": "voice_nope"}),
        (flagged, {"model": "s9"}),
        (unflagged, {}),
    ):
        fish = sdk.client(caller, base)
        with pytest.raises(WebSocketError):
            await asyncio.to_thread(lambda: list(fish.tts.stream_websocket(iter(FRAGMENTS), **kwargs)))  # noqa: B023
        assert await harness.balance(caller.account_id) == 1000

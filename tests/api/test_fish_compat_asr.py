"""The Fish Audio API's speech to text (``POST /v1/asr``) driven by the real ``fish-audio-sdk``
clients over TCP: MessagePack and multipart, timestamps, billing, bad input."""

from __future__ import annotations

import asyncio
import math

import httpx
import msgpack
import pytest
from fish_audio_sdk import ASRRequest, HttpCodeErr
from fishaudio.exceptions import APIError

from tests.api.fish_sdk import Clients, Serve, base_url, decoded
from tests.audio_checks import word_error_rate
from tests.conftest import Caller, Harness

SPOKEN = "The weather today is sunny with a light breeze from the west."


async def speech(harness: Harness, caller: Caller, text: str = SPOKEN) -> bytes:
    response = await harness.client.post(
        "/api/open/v1/speech/tts", headers=caller.headers, json={"text": text, "format": "wav"}
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_transcripts_with_and_without_timestamps_billed_per_second(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    wav = await speech(harness, caller)
    seconds = decoded(wav, "wav").duration_seconds
    before = await harness.balance(caller.account_id)
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)

    timed = await asyncio.to_thread(fish.asr.transcribe, audio=wav, language="en")
    assert word_error_rate(SPOKEN, timed.text) < 0.35, timed.text
    assert timed.duration == pytest.approx(seconds, abs=0.1)  # seconds, as the API reference says
    assert timed.segments
    starts = [segment.start for segment in timed.segments]
    assert starts == sorted(starts)
    for segment in timed.segments:
        assert 0 <= segment.start <= segment.end <= timed.duration + 0.05
    plain = await asyncio.to_thread(fish.asr.transcribe, audio=wav, include_timestamps=False)
    assert plain.segments == []
    assert word_error_rate(SPOKEN, plain.text) < 0.35
    old = await asyncio.to_thread(sdk.session(caller, base).asr, ASRRequest(audio=wav, language="en"))
    assert word_error_rate(SPOKEN, old.text) < 0.35
    assert await harness.balance(caller.account_id) == before - 3 * math.ceil(seconds)


async def test_multipart_upload(harness: Harness, caller: Caller, serve: Serve) -> None:
    wav = await speech(harness, caller)
    async with httpx.AsyncClient(base_url=await base_url(harness, serve), headers=caller.headers) as http:
        response = await http.post(
            "/v1/asr",
            files={"audio": ("speech.wav", wav, "audio/wav")},
            data={"language": "en", "ignore_timestamps": "false"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text", "duration", "segments"}
    assert word_error_rate(SPOKEN, body["text"]) < 0.35
    assert body["segments"]
    assert set(body["segments"][0]) == {"text", "start", "end"}


async def test_bad_input_is_refused_and_costs_nothing(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    for kwargs, needle in (
        ({"audio": b"this is not audio"}, "not audio"),
        ({"audio": b"RIFF", "language": "xx"}, "language"),
    ):
        with pytest.raises(APIError) as refused:
            await asyncio.to_thread(fish.asr.transcribe, **kwargs)
        assert refused.value.status == 400
        assert needle in refused.value.message
    with pytest.raises(HttpCodeErr) as empty:
        await asyncio.to_thread(sdk.session(caller, base).asr, ASRRequest(audio=b""))
    assert empty.value.status == 400
    async with httpx.AsyncClient(base_url=base, headers=caller.headers) as http:
        packed = {"Content-Type": "application/msgpack"}
        malformed = await http.post("/v1/asr", headers=packed, content=b"\x92\x01")
        wrong_type = await http.post(
            "/v1/asr", headers=packed, content=msgpack.packb({"audio": "text, not bin"})
        )
        json_body = await http.post("/v1/asr", json={"audio": "x"})
        no_file = await http.post("/v1/asr", files={"sound": ("a.wav", b"RIFF")})
    for response, status in ((malformed, 400), (wrong_type, 400), (json_body, 415), (no_file, 400)):
        assert response.status_code == status, response.text
        assert set(response.json()) == {"status", "message"}
    assert await harness.balance(caller.account_id) == 1000

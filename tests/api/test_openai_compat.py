"""The OpenAI audio API with the real ``openai`` client over TCP: speech in every format, streamed
and as SSE, voices, models, instructions, the same billing as our TTS path, errors, the switch."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from tests.api.openai_client import Serve, decoded_speech, openai_client
from tests.api.test_voices import accepted_voice
from tests.audio_checks import mean_f0, rms_db
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES

SENTENCE = "Hello world. This is openfish speaking, with a second clause."
TTS = "/api/open/v1/speech/tts"


async def balance(harness: Harness, caller: Caller) -> int:
    return await harness.balance(caller.account_id)


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI envelope's ``error`` object (the SDK keeps it as ``body``)."""
    assert isinstance(exc.body, dict), exc.body
    assert set(exc.body) == {"message", "type", "param", "code"}
    assert exc.response.headers["X-Request-Id"]
    return exc.body


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [
        ("mp3", "audio/mpeg", 22050),
        ("opus", "audio/ogg", 48000),
        ("aac", "audio/aac", 22050),
        ("flac", "audio/flac", 22050),
        ("wav", "audio/wav", 22050),
        ("pcm", "audio/pcm", 24000),
    ],
)
async def test_speech_in_every_format_decodes_and_is_billed_per_character(
    harness: Harness, caller: Caller, serve: Serve, fmt: str, content_type: str, rate: int
) -> None:
    async with openai_client(harness, serve, caller) as client:
        speech = await client.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input=SENTENCE,
            response_format=fmt,  # type: ignore[arg-type]
        )
    assert speech.response.headers["Content-Type"].startswith(content_type)
    audio = decoded_speech(speech.content, fmt)
    assert audio.sample_rate == rate
    assert 2.5 < audio.duration_seconds < 5.5
    assert rms_db(audio.samples) > -30
    assert speech.response.headers["X-Credits-Used"] == str(len(SENTENCE))
    assert await balance(harness, caller) == 1000 - len(SENTENCE)


async def test_speech_streams_as_it_is_made_and_costs_what_our_own_path_costs(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    long_text = " ".join(SENTENCES)
    async with (
        openai_client(harness, serve, caller) as client,
        client.audio.speech.with_streaming_response.create(
            model="tts-1-hd", voice="nova", input=long_text, response_format="mp3"
        ) as response,
    ):
        chunks = [chunk async for chunk in response.iter_bytes() if chunk]
    assert len(chunks) > 1  # pieces arrive one by one, not as one body at the end
    assert 8 < decoded_speech(b"".join(chunks), "mp3").duration_seconds < 20
    after_openai = await balance(harness, caller)
    assert after_openai == 1000 - len(long_text)

    ours = await harness.client.post(
        TTS, headers=caller.headers, json={"text": long_text, "version": "v3-hd"}
    )
    assert ours.status_code == 200
    assert await balance(harness, caller) == after_openai - len(long_text)
    usage = (await harness.client.get("/api/open/v1/usage", headers=caller.headers)).json()
    assert usage["totals"] == [
        {"surface": "tts", "requests": 2, "units": 2 * len(long_text), "credits_used": 2 * len(long_text)}
    ]


async def test_sse_speech_events_carry_the_audio(harness: Harness, caller: Caller, serve: Serve) -> None:
    async with (
        openai_client(harness, serve, caller) as client,
        client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="wav", stream_format="sse"
        ) as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: ") :]) async for line in response.iter_lines() if line]
    *deltas, done = events
    assert deltas
    assert all(event["type"] == "speech.audio.delta" for event in deltas)
    audio = decoded_speech(b"".join(base64.b64decode(event["audio"]) for event in deltas), "wav")
    assert 2.5 < audio.duration_seconds < 5.5
    assert done == {
        "type": "speech.audio.done",
        "usage": {"input_tokens": len(SENTENCE), "output_tokens": 0, "total_tokens": len(SENTENCE)},
    }
    assert await balance(harness, caller) == 1000 - len(SENTENCE)


async def test_voices_map_to_ours_and_our_ids_work(
    harness_factory: Callable[..., Awaitable[Harness]], serve: Serve
) -> None:
    harness = await harness_factory(tts={"openai_voices": {"fable": "espeak-en-gb"}})
    caller = await harness.new_caller()
    # espeak-ng is deterministic: the mapped name and the voice itself give the same bytes.
    ours = await harness.client.post(
        TTS, headers=caller.headers, json={"text": SENTENCE, "voiceId": "espeak-en-gb", "format": "wav"}
    )
    async with openai_client(harness, serve, caller) as client:
        fable = await client.audio.speech.create(
            model="tts-1", voice="fable", input=SENTENCE, response_format="wav"
        )
        as_object = await client.audio.speech.create(
            model="tts-1", voice={"id": "espeak-en-gb"}, input=SENTENCE, response_format="wav"
        )
        # An unmapped name speaks the default voice of the text's language: Kokoro for Japanese.
        japanese = await client.audio.speech.create(
            model="tts-1", voice="alloy", input="こんにちは、今日はいい天気ですね。", response_format="wav"
        )
    assert fable.content == as_object.content == ours.content
    assert decoded_speech(japanese.content, "wav").sample_rate == 24000


async def test_instructions_set_the_emotion_where_the_model_allows_it(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    voice = "espeak-en-us"  # deterministic, so only the mapping differs between calls

    async def wav(client: openai.AsyncOpenAI, model: str, instructions: str | openai.Omit) -> bytes:
        speech = await client.audio.speech.create(
            model=model, voice=voice, input=SENTENCE, response_format="wav", instructions=instructions
        )
        return speech.content

    async with openai_client(harness, serve, caller) as client:
        cheerful = await wav(client, "gpt-4o-mini-tts", "Speak in a cheerful, upbeat tone.")
        calm = await wav(client, "gpt-4o-mini-tts", "Calm and soothing, like a bedtime story.")
        plain = await wav(client, "gpt-4o-mini-tts", openai.omit)
        # tts-1 (version v1) has no emotion control: instructions are accepted and ignored.
        ignored = await wav(client, "tts-1", "Speak in a cheerful, upbeat tone.")
        tts1 = await wav(client, "tts-1", openai.omit)
    happy_f0 = mean_f0(decoded_speech(cheerful, "wav").samples, 22050)
    calm_f0 = mean_f0(decoded_speech(calm, "wav").samples, 22050)
    assert happy_f0 > 1.17 * calm_f0
    assert cheerful != plain
    assert ignored == tts1


async def test_models_are_listed_and_retrieved(harness: Harness, caller: Caller, serve: Serve) -> None:
    async with openai_client(harness, serve, caller) as client:
        listed = [model.id async for model in client.models.list()]
        found = await client.models.retrieve("whisper-1")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("gpt-9")
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "v1", "v3-turbo"} <= set(listed)
    assert {"whisper-1", "whisper-base", "whisper-tiny-en"} <= set(listed)
    assert (found.id, found.object) == ("whisper-1", "model")
    assert error_of(missing.value)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("fields", "error", "param"),
    [
        ({"voice": "no-such-voice"}, openai.NotFoundError, "voice"),
        ({"input": ""}, openai.BadRequestError, "input"),
        ({"input": "…"}, openai.BadRequestError, "input"),
        ({"response_format": "ogg"}, openai.BadRequestError, "response_format"),
        ({"model": "tts-2"}, openai.BadRequestError, "model"),
        ({"speed": 4.5}, openai.BadRequestError, "speed"),
        ({"stream_format": "chunks"}, openai.BadRequestError, "stream_format"),
    ],
)
async def test_bad_speech_requests_get_openai_errors_and_cost_nothing(
    harness: Harness,
    caller: Caller,
    serve: Serve,
    fields: dict[str, Any],
    error: type[openai.APIStatusError],
    param: str,
) -> None:
    request: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": SENTENCE, **fields}
    async with openai_client(harness, serve, caller) as client:
        with pytest.raises(error) as raised:
            await client.audio.speech.create(**request)
    body = error_of(raised.value)
    assert body["param"] == param, body
    assert body["type"] == "invalid_request_error"
    assert await balance(harness, caller) == 1000


async def test_another_accounts_private_voice_is_not_found(
    harness_factory: Callable[..., Awaitable[Harness]], serve: Serve
) -> None:
    # No worker: the voice stays processing, which is all a 404 for others needs.
    harness = await harness_factory(jobs={"embedded_worker": False})
    owner, other = await harness.new_caller(), await harness.new_caller()
    voice = await accepted_voice(harness, owner)
    async with openai_client(harness, serve, other) as client:
        with pytest.raises(openai.NotFoundError) as raised:
            await client.audio.speech.create(model="tts-1", voice=voice.id, input=SENTENCE)
    assert error_of(raised.value)["param"] == "voice"
    async with openai_client(harness, serve, owner) as client:
        with pytest.raises(openai.ConflictError):  # the owner's: known, but not ready yet
            await client.audio.speech.create(model="tts-1", voice=voice.id, input=SENTENCE)
    assert await balance(harness, other) == 1000
    assert await balance(harness, owner) == 1000 - harness.services.settings.voices.creation_credits


async def test_auth_credits_and_rate_limits_answer_as_openai_does(
    harness_factory: Callable[..., Awaitable[Harness]], serve: Serve
) -> None:
    harness = await harness_factory(tiers={"pro": {"requests_per_minute": 2}})
    caller = await harness.new_caller(credits=10)
    stranger = Caller(caller.account_id, "ofk_tok_" + "0" * 32 + "_" + "x" * 43, "tok_x")
    async with openai_client(harness, serve, stranger) as client:
        with pytest.raises(openai.AuthenticationError) as unauthorized:
            await client.models.list()
    assert error_of(unauthorized.value)["code"] == "invalid_api_key"
    async with openai_client(harness, serve, caller, max_retries=2) as client:
        with pytest.raises(openai.RateLimitError) as poor:
            await client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE)
        assert poor.value.response.headers["x-should-retry"] == "false"  # so the SDK did not retry
        assert error_of(poor.value)["code"] == error_of(poor.value)["type"] == "insufficient_quota"
        await client.models.list()  # the second request of the minute
        with pytest.raises(openai.RateLimitError) as limited:
            await client.with_options(max_retries=0).models.list()
    assert int(limited.value.response.headers["Retry-After"]) >= 1
    assert error_of(limited.value)["code"] == "rate_limit_exceeded"
    assert await balance(harness, caller) == 10


async def test_switched_off_it_is_absent_and_answers_404(
    harness_factory: Callable[..., Awaitable[Harness]], harness: Harness, serve: Serve
) -> None:
    schema = (await harness.client.get("/api/openapi.json")).json()
    tagged = {path for path, ops in schema["paths"].items() for op in ops.values() if "openai" in op["tags"]}
    assert tagged == {
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/models",
        "/v1/models/{model}",
    }
    off = await harness_factory(surfaces={"openai_compat": False})
    caller = await off.new_caller()
    paths = (await off.client.get("/api/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/v1/audio", "/v1/models"))]
    async with openai_client(off, serve, caller) as client:
        with pytest.raises(openai.NotFoundError):
            await client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE)
        with pytest.raises(openai.NotFoundError):
            await client.models.list()
    assert await balance(off, caller) == 1000

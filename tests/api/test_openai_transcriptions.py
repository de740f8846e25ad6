"""OpenAI transcriptions and translations with the real ``openai`` client over TCP: speech made by
our TTS comes back as text in every response format, as SSE, translated to English, billed exactly
like our own transcription path; bad input gets OpenAI's errors and costs nothing."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.audio import TranscriptionStreamEvent

from openfish.audio.decode import decode_audio
from openfish.engines.registry import EngineRegistry
from tests.api.openai_client import Serve, openai_client
from tests.audio_checks import word_error_rate
from tests.captions import assert_timed_inside, parse_srt, parse_vtt
from tests.conftest import Caller, Harness
from tests.services.asr.gated import GatedEngine, long_speech

SPOKEN = "The weather today is sunny with a light breeze from the west."
ASR = "/api/open/v1/speech/transcriptions"
TTS = "/api/open/v1/speech/tts"


async def speech(harness: Harness, caller: Caller, text: str = SPOKEN, **fields: Any) -> bytes:
    """``text`` spoken by our TTS as WAV (paid for here, so tests measure from after it)."""
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": text, "format": "wav", **fields}
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_json_transcription_costs_what_our_own_path_costs(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller)
    billed = math.ceil(decode_audio(wav).duration_seconds)
    before = await harness.balance(caller.account_id)
    async with openai_client(harness, serve, caller) as client:
        result = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", wav, "audio/wav")
        )
    assert word_error_rate(SPOKEN, result.text) < 0.35, result.text
    assert result.usage is not None
    assert result.usage.type == "duration"
    assert result.usage.seconds == billed
    after_openai = await harness.balance(caller.account_id)
    assert after_openai == before - billed

    ours = await harness.client.post(
        ASR, headers=caller.headers, files={"file": ("speech.wav", wav, "audio/wav")}
    )
    assert ours.json()["credits_used"] == billed
    assert await harness.balance(caller.account_id) == after_openai - billed


async def test_verbose_json_has_segments_and_increasing_words_inside_the_audio(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller)
    async with openai_client(harness, serve, caller) as client:
        result = await client.audio.transcriptions.create(
            model="whisper-base",
            file=("speech.wav", wav, "audio/wav"),
            language="en",
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.language == "english"
    assert abs(result.duration - decode_audio(wav).duration_seconds) < 0.01
    assert word_error_rate(SPOKEN, result.text) < 0.35, result.text
    assert result.segments
    assert result.segments[0].id == 0
    assert result.segments[0].text
    assert result.words is not None
    assert len(result.words) >= len(SPOKEN.split()) - 2
    assert_timed_inside([(w.start, w.end, w.word) for w in result.words], result.duration)
    assert word_error_rate(SPOKEN, " ".join(w.word for w in result.words)) < 0.35


async def test_text_srt_and_vtt(harness: Harness, caller: Caller, serve: Serve) -> None:
    spoken = SPOKEN + " It should stay that way until the evening."
    wav = await speech(harness, caller, spoken)
    duration = decode_audio(wav).duration_seconds
    answers = {}
    async with openai_client(harness, serve, caller) as client:
        for fmt in ("text", "srt", "vtt"):
            answers[fmt] = await client.audio.transcriptions.create(
                model="whisper-1",
                file=("speech.wav", wav, "audio/wav"),
                response_format=fmt,
            )
    assert isinstance(answers["text"], str)
    assert answers["text"].endswith("\n")
    assert word_error_rate(spoken, answers["text"]) < 0.35, answers["text"]
    for cues in (parse_srt(answers["srt"]), parse_vtt(answers["vtt"])):
        assert_timed_inside(cues, duration)
        assert word_error_rate(answers["text"], " ".join(text for _start, _end, text in cues)) < 0.2
    assert await harness.balance(caller.account_id) == 1000 - len(spoken) - 3 * math.ceil(duration)


async def test_streamed_transcription_is_server_sent_events(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller)
    async with openai_client(harness, serve, caller) as client:
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", wav, "audio/wav"), stream=True
        )
        events = [event async for event in stream]
    *deltas, done = events
    assert deltas
    assert all(event.type == "transcript.text.delta" for event in deltas)
    assert done.type == "transcript.text.done"
    assert "".join(event.delta for event in deltas) == done.text  # type: ignore[union-attr]
    assert word_error_rate(SPOKEN, done.text) < 0.35, done.text


async def test_translation_turns_other_languages_into_english(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller, "こんにちは。今日はとてもいい天気ですね。", language="ja")
    async with openai_client(harness, serve, caller) as client:
        heard = await client.audio.transcriptions.create(model="whisper-1", file=("ja.wav", wav, "audio/wav"))
        with pytest.warns(
            DeprecationWarning, match="deprecated"
        ):  # the SDK marks the endpoint deprecated (it still works)
            translated = await client.audio.translations.create(
                model="whisper-1", file=("ja.wav", wav, "audio/wav"), response_format="verbose_json"
            )
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", heard.text), heard.text
    assert translated.text.isascii(), translated.text
    assert re.search(r"\b(hello|weather|nice|good|today)\b", translated.text.lower()), translated.text
    assert translated.language == "english"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "whisper-9"}, "model"),
        ({"response_format": "docx"}, "response_format"),
        ({"language": "xx"}, "language"),
        ({"temperature": 1.5}, "temperature"),
        ({"timestamp_granularities": ["sentence"]}, "timestamp_granularities"),
        ({"stream": True, "response_format": "srt"}, "stream"),
        ({"file": ("notes.txt", b"not audio at all", "text/plain")}, "file"),
        ({"extra_body": {"diarize": "true"}}, "diarize"),
        ({"include": ["logprobs", "tokens"]}, "include"),
        ({"include": ["logprobs"], "response_format": "verbose_json"}, "include"),
        ({"include": ["logprobs"], "response_format": "text", "stream": True}, "include"),
        ({"chunking_strategy": "manual"}, "chunking_strategy"),
        ({"chunking_strategy": {"type": "client_vad"}}, "chunking_strategy"),
        ({"chunking_strategy": {"type": "server_vad", "threshold": 1.5}}, "chunking_strategy"),
        ({"chunking_strategy": {"type": "server_vad", "prefix_padding_ms": -1}}, "chunking_strategy"),
        ({"chunking_strategy": {"type": "server_vad", "silence_duration_ms": 0.5}}, "chunking_strategy"),
        ({"chunking_strategy": {"type": "server_vad", "eagerness": "high"}}, "chunking_strategy"),
    ],
)
async def test_bad_transcription_requests_get_openai_errors_and_cost_nothing(
    harness: Harness, caller: Caller, serve: Serve, fields: dict[str, Any], param: str
) -> None:
    wav = await speech(harness, caller, "Short.")
    before = await harness.balance(caller.account_id)
    request: dict[str, Any] = {"model": "whisper-1", "file": ("speech.wav", wav, "audio/wav"), **fields}
    async with openai_client(harness, serve, caller) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.audio.transcriptions.create(**request)
    assert raised.value.body["param"] == param, raised.value.body  # type: ignore[index]
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert await harness.balance(caller.account_id) == before


async def test_english_only_models_cannot_translate(harness: Harness, caller: Caller, serve: Serve) -> None:
    wav = await speech(harness, caller, "Short.")
    before = await harness.balance(caller.account_id)
    async with openai_client(harness, serve, caller) as client:
        with (
            pytest.raises(openai.BadRequestError) as raised,
            pytest.warns(DeprecationWarning, match="deprecated"),
        ):
            await client.audio.translations.create(model="whisper-tiny-en", file=("a.wav", wav, "audio/wav"))
    assert raised.value.body["param"] == "model"  # type: ignore[index]
    assert await harness.balance(caller.account_id) == before


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": "gpt-4o-transcribe-diarize"}, "model"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"known_speaker_names": ["agent"]}, "known_speaker_names"),
        ({"known_speaker_references": ["data:audio/wav;base64,UklGRg=="]}, "known_speaker_references"),
    ],
)
async def test_diarization_is_refused_saying_why(
    harness: Harness, caller: Caller, serve: Serve, fields: dict[str, Any], param: str
) -> None:
    wav = await speech(harness, caller, "Short.")
    before = await harness.balance(caller.account_id)
    request: dict[str, Any] = {"model": "whisper-1", "file": ("speech.wav", wav, "audio/wav"), **fields}
    async with openai_client(harness, serve, caller) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.audio.transcriptions.create(**request)
    error = raised.value.body
    assert error["param"] == param, error  # type: ignore[index]
    assert error["message"].startswith(f"{param}: ")  # type: ignore[index]
    assert "speaker diarization is not available on this server" in error["message"]  # type: ignore[index]
    assert await harness.balance(caller.account_id) == before


async def test_logprobs_are_whisper_word_probabilities(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller)
    async with openai_client(harness, serve, caller) as client:
        result = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", wav, "audio/wav"), include=["logprobs"]
        )
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", wav, "audio/wav"), include=["logprobs"], stream=True
        )
        events = [event async for event in stream]
    assert result.logprobs is not None
    assert len(result.logprobs) >= len(SPOKEN.split()) - 2
    # One entry per word, each with the space before it: together, the text.
    assert "".join(entry.token or "" for entry in result.logprobs) == result.text
    for entry in result.logprobs:
        assert entry.token is not None
        assert entry.logprob is not None
        assert entry.logprob <= 0.0
        assert entry.bytes == list(entry.token.encode())
    assert math.exp(sum(entry.logprob or 0.0 for entry in result.logprobs) / len(result.logprobs)) > 0.5
    *deltas, done = events
    assert done.type == "transcript.text.done"
    for delta in deltas:
        assert delta.type == "transcript.text.delta"
        assert delta.logprobs
        assert "".join(entry.token or "" for entry in delta.logprobs) == delta.delta
    assert done.logprobs is not None
    assert [entry.token for entry in done.logprobs] == [
        entry.token
        for delta in deltas
        for entry in delta.logprobs or []  # type: ignore[union-attr]
    ]


async def test_chunking_strategy_sets_the_speech_filter(
    harness: Harness, caller: Caller, serve: Serve
) -> None:
    wav = await speech(harness, caller)
    file = ("speech.wav", wav, "audio/wav")
    billed = math.ceil(decode_audio(wav).duration_seconds)
    before = await harness.balance(caller.account_id)
    async with openai_client(harness, serve, caller) as client:
        auto = await client.audio.transcriptions.create(
            model="whisper-1", file=file, chunking_strategy="auto"
        )
        tuned = await client.audio.transcriptions.create(
            model="whisper-1",
            file=file,
            chunking_strategy={
                "type": "server_vad",
                "prefix_padding_ms": 200,
                "silence_duration_ms": 500,
                "threshold": 0.4,
            },
        )
        # A threshold no stretch of audio reaches: nothing counts as speech, so nothing is heard.
        deaf = await client.audio.transcriptions.create(
            model="whisper-1", file=file, chunking_strategy={"type": "server_vad", "threshold": 1.0}
        )
    assert word_error_rate(SPOKEN, auto.text) < 0.35, auto.text
    assert word_error_rate(SPOKEN, tuned.text) < 0.35, tuned.text
    assert deaf.text == ""
    assert await harness.balance(caller.account_id) == before - 3 * billed


@pytest.fixture
async def gated(
    engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> AsyncIterator[tuple[Harness, GatedEngine]]:
    """An app whose only transcriber is the real tiny.en model, held after its first segment."""
    inner = engines.transcriber("whisper-tiny-en")
    assert inner is not None
    engine = GatedEngine(inner)
    only = EngineRegistry()
    only.register_transcriber(engine)
    harness: Harness = await harness_factory(engines=only)
    yield harness, engine
    engine.gate.set()  # never leave a worker waiting, whatever the test did


async def test_streamed_deltas_leave_while_the_audio_is_still_being_decoded(
    gated: tuple[Harness, GatedEngine], serve: Serve
) -> None:
    harness, engine = gated
    caller = await harness.new_caller()
    wav = long_speech()
    billed = math.ceil(decode_audio(wav).duration_seconds)
    events: list[TranscriptionStreamEvent] = []
    async with openai_client(harness, serve, caller) as client:
        stream = await client.audio.transcriptions.create(
            model="whisper-tiny-en", file=("long.wav", wav, "audio/wav"), stream=True
        )
        assert stream.response.headers["X-Credits-Used"] == str(billed)
        async for event in stream:
            if not events:
                # The engine is held at its first segment: the rest of the audio is not decoded yet.
                assert event.type == "transcript.text.delta"
                assert len(engine.handed) == 1
                assert not engine.finished.is_set()
                engine.gate.set()
            events.append(event)
    *deltas, done = events
    assert len(deltas) == len(engine.handed) > 1
    assert engine.handed[-1].seek > engine.handed[0].seek  # from a decoding pass after the first delta
    assert done.type == "transcript.text.done"
    assert "".join(event.delta for event in deltas) == done.text  # type: ignore[union-attr]
    assert await harness.balance(caller.account_id) == 1000 - billed


async def test_a_client_that_leaves_a_stream_pays_nothing_and_its_decode_stops(
    gated: tuple[Harness, GatedEngine], serve: Serve
) -> None:
    harness, engine = gated
    caller = await harness.new_caller()
    server = (await serve(harness)).replace("ws://", "http://", 1)
    async with (
        httpx.AsyncClient(base_url=server, headers=caller.headers) as http,
        http.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": ("long.wav", long_speech(), "audio/wav")},
            data={"model": "whisper-tiny-en", "stream": "true"},
        ) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break  # the first delta; then the connection is closed
        assert await harness.balance(caller.account_id) < 1000  # held while the stream runs
    # The server notices the client is gone and releases the hold, with the engine still held.
    for _ in range(200):
        if await harness.balance(caller.account_id) == 1000:
            break
        await asyncio.sleep(0.05)
    assert await harness.balance(caller.account_id) == 1000
    assert not engine.finished.is_set()
    engine.gate.set()
    assert await asyncio.to_thread(engine.finished.wait, 30)
    assert not engine.returned  # stopped at the next segment rather than decoding the rest
    assert len(engine.handed) == 2
    assert await harness.balance(caller.account_id) == 1000

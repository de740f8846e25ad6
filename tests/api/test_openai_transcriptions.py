"""OpenAI transcriptions and translations with the real ``openai`` client over TCP: speech made by
our TTS comes back as text in every response format, as SSE, translated to English, billed exactly
like our own transcription path; bad input gets OpenAI's errors and costs nothing."""

from __future__ import annotations

import math
import re
from typing import Any

import openai
import pytest

from openfish.audio.decode import decode_audio
from tests.api.openai_client import Serve, openai_client
from tests.audio_checks import word_error_rate
from tests.captions import assert_timed_inside, parse_srt, parse_vtt
from tests.conftest import Caller, Harness

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

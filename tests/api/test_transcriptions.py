"""Speech to text over the API: round trips through TTS, uploads, limits, billing, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from openfish.audio.decode import decode_audio
from openfish.audio.encode import encode_complete
from tests.api.test_handlers import assert_v1_error
from tests.audio_checks import word_error_rate
from tests.captions import assert_timed_inside, parse_srt, parse_vtt
from tests.conftest import Caller, Harness
from tests.voice_clips import silence_wav

ASR = "/api/open/v1/speech/transcriptions"
SPOKEN = "The weather today is sunny with a light breeze from the west."
# One sentence of Piper (whose output varies run to run) through Whisper base with greedy decoding:
# a word or two may differ; the engine tests and bench/asr.py measure WER on more text.


async def stored_speech(harness: Harness, caller: Caller, text: str = SPOKEN) -> str:
    response = await harness.client.post(
        "/api/open/v1/speech/tts", headers=caller.headers, json={"text": text, "format": "wav", "cache": True}
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["audio_url"]
    return url


async def balance(harness: Harness, caller: Caller) -> int:
    return (await harness.services.accounts.get_account(caller.account_id)).credits


async def test_round_trip_through_tts_gives_the_words_back_with_timestamps(
    harness: Harness, caller: Caller
) -> None:
    url = await stored_speech(harness, caller)
    before = await balance(harness, caller)
    response = await harness.client.post(ASR, headers=caller.headers, json={"audioUrl": url, "words": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert word_error_rate(SPOKEN, body["text"]) < 0.35, body["text"]
    assert body["language"] == "en"
    assert 2.0 < body["duration"] < 6.0
    starts = [segment["start"] for segment in body["segments"]]
    assert starts == sorted(starts)
    for segment in body["segments"]:
        assert 0 <= segment["start"] <= segment["end"] <= body["duration"] + 0.05
        assert segment["words"]
    seconds = -(-body["duration"] // 1)
    assert body["credits_used"] == seconds
    assert await balance(harness, caller) == before - seconds


async def test_multipart_upload_and_files_surface(harness: Harness, caller: Caller) -> None:
    url = await stored_speech(harness, caller)
    wav = (await harness.client.get(url)).content
    direct = await harness.client.post(
        ASR, headers=caller.headers, files={"file": ("speech.wav", wav, "audio/wav")}, data={"language": "en"}
    )
    assert direct.status_code == 200, direct.text
    assert word_error_rate(SPOKEN, direct.json()["text"]) < 0.35
    uploaded = await harness.client.post(
        "/api/open/v1/files", headers=caller.headers, files={"file": ("a.wav", wav)}
    )
    assert uploaded.status_code == 201
    file_url = uploaded.json()["url"]
    via_file = await harness.client.post(ASR, headers=caller.headers, json={"audioUrl": file_url})
    assert via_file.status_code == 200
    # The same path on another host is that host's file: an external URL (refused here, where
    # external fetches are off), never this server's upload.
    elsewhere = file_url.replace("http://testserver", "http://other-host.example")
    refused_elsewhere = await harness.client.post(ASR, headers=caller.headers, json={"audioUrl": elsewhere})
    assert_v1_error(refused_elsewhere, 403, "forbidden")
    relative = await harness.client.post(
        ASR, headers=caller.headers, json={"audioUrl": file_url.removeprefix("http://testserver")}
    )
    assert relative.status_code == 200
    other = await harness.new_caller()
    refused = await harness.client.post(ASR, headers=other.headers, json={"audioUrl": file_url})
    assert_v1_error(refused, 404, "not_found")
    assert (await harness.client.get(file_url, headers=other.headers)).status_code == 404


async def test_captions_in_srt_and_vtt(harness: Harness, caller: Caller) -> None:
    spoken = SPOKEN + " It should stay that way until the evening."
    url = await stored_speech(harness, caller, spoken)
    wav = (await harness.client.get(url)).content
    duration = decode_audio(wav).duration_seconds
    before = await balance(harness, caller)
    srt = await harness.client.post(
        ASR,
        headers=caller.headers,
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"response_format": "srt"},
    )
    vtt = await harness.client.post(
        ASR, headers=caller.headers, json={"audioUrl": url, "response_format": "vtt"}
    )
    assert srt.headers["Content-Type"] == "application/x-subrip; charset=utf-8"
    assert vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    for cues in (parse_srt(srt.text), parse_vtt(vtt.text)):
        assert_timed_inside(cues, duration)
        assert word_error_rate(spoken, " ".join(text for _start, _end, text in cues)) < 0.35
    seconds = math.ceil(duration)
    assert srt.headers["X-Credits-Used"] == vtt.headers["X-Credits-Used"] == str(seconds)
    assert await balance(harness, caller) == before - 2 * seconds


async def test_silence_gives_no_words(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        ASR, headers=caller.headers, files={"file": ("quiet.wav", silence_wav(4.0), "audio/wav")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == ""
    assert response.json()["segments"] == []


async def test_bad_input_is_refused_and_free(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(asr={"max_seconds": 5})
    caller = await harness.new_caller()
    long_wav = encode_complete(np.full(22050 * 6, 0.01, dtype=np.float32), "wav", 22050)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"files": {"file": ("x.txt", b"not audio at all", "text/plain")}}, 400),
        ({"files": {"file": ("long.wav", long_wav, "audio/wav")}}, 413),
        ({"json": {"audioUrl": "https://example.com/a.wav"}}, 403),  # external URLs are off by default
        ({"json": {"audioUrl": "/api/open/v1/audio/" + "0" * 64 + "_22050.wav?expires=1&sig=x"}}, 403),
        ({"json": {"audioUrl": "/api/open/v1/files/file_" + "0" * 32}}, 404),
        ({"json": {"audioUrl": "x", "language": "klingon"}}, 400),
        ({"files": {"file": ("a.wav", silence_wav(1.0), "audio/wav")}, "data": {"language": "zz"}}, 400),
        ({"files": {"file": ("a.wav", silence_wav(1.0), "audio/wav")}, "data": {"langauge": "en"}}, 400),
        ({"json": {"audioUrl": "x", "model": "whisper-huge"}}, 400),
        ({"content": b"raw", "headers": {"Content-Type": "audio/wav"}}, 415),
    ]
    for request, status in cases:
        headers = {**caller.headers, **request.pop("headers", {})}
        response = await harness.client.post(ASR, headers=headers, **request)
        assert response.status_code == status, (request, response.text)
    assert await balance(harness, caller) == 1000

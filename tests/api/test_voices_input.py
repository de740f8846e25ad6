"""Voice creation refuses bad uploads with a clear error naming the file, and charges nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES, espeak_wav, silence_wav

VOICES = "/api/open/v1/voices"


def wav_files(count: int = 2) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("audioFiles", (f"ref{i}.wav", espeak_wav(SENTENCES[i]), "audio/wav")) for i in range(count)]


async def balance(harness: Harness, caller: Caller) -> int:
    return (await harness.services.accounts.get_account(caller.account_id)).credits


@pytest.mark.parametrize(
    ("files", "status", "needle"),
    [
        (
            [("audioFiles", ("notes.txt", b"just some text, not audio at all", "text/plain"))],
            400,
            "notes.txt",
        ),
        ([("audioFiles", ("random.wav", bytes(range(256)) * 40, "audio/wav"))], 400, "random.wav"),
        ([("audioFiles", ("empty.mp3", b"", "audio/mpeg"))], 400, "empty.mp3"),
        ([("audioFiles", ("quiet.wav", silence_wav(), "audio/wav"))], 422, "quiet.wav"),
        ([("audioFiles", ("cut.wav", espeak_wav(SENTENCES[0])[:60], "audio/wav"))], 422, "cut.wav"),
    ],
)
async def test_bad_files_are_named_and_nothing_is_charged_or_kept(
    harness: Harness, caller: Caller, files: list[Any], status: int, needle: str
) -> None:
    response = await harness.client.post(VOICES, headers=caller.headers, data={"name": "x"}, files=files)
    assert response.status_code == status, response.text
    assert needle in response.json()["message"]
    assert await balance(harness, caller) == 1000
    assert not (harness.services.settings.data_dir / "blobs" / "voices").exists()


async def test_too_little_speech_in_all_is_422(harness: Harness, caller: Caller) -> None:
    files = [("audioFiles", ("short.wav", espeak_wav("Hi."), "audio/wav"))]
    response = await harness.client.post(VOICES, headers=caller.headers, data={"name": "x"}, files=files)
    error = assert_v1_error(response, 422, "unprocessable")
    assert "at least 3" in error["message"]


async def test_missing_fields_and_bad_values_name_the_field(harness: Harness, caller: Caller) -> None:
    cases = [
        ({}, wav_files(1), "name"),
        ({"name": "x"}, [], "audioFiles"),
        ({"name": "x", "visibility": "secret"}, wav_files(1), "visibility"),
        ({"name": "x", "language": "not a language"}, wav_files(1), "language"),
        ({"name": "x", "language": "de"}, wav_files(2), "language"),
        ({"name": "   "}, wav_files(2), "name"),
    ]
    for data, files, field in cases:
        response = await harness.client.post(VOICES, headers=caller.headers, data=data, files=files or None)
        error = assert_v1_error(response, 400, "invalid_request")
        assert field in error["message"], (data, error)
    assert await balance(harness, caller) == 1000


async def test_json_instead_of_multipart_is_refused(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(VOICES, headers=caller.headers, json={"name": "x"})
    assert response.status_code in (400, 415)


async def test_too_many_files_and_oversized_files(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(voices={"max_files": 2, "max_file_bytes": 100_000})
    caller = await harness.new_caller()
    response = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "x"}, files=wav_files(3)
    )
    assert "at most 2" in assert_v1_error(response, 400, "invalid_request")["message"]
    big = [("audioFiles", ("big.wav", espeak_wav(SENTENCES[1]) + b"\0" * 100_000, "audio/wav"))]
    response = await harness.client.post(VOICES, headers=caller.headers, data={"name": "x"}, files=big)
    assert "big.wav" in assert_v1_error(response, 413, "payload_too_large")["message"]


async def test_a_body_over_the_upload_limit_is_refused_unread(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(voices={"max_upload_bytes": 50_000})
    caller = await harness.new_caller()
    response = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "x"}, files=wav_files(2)
    )
    assert_v1_error(response, 413, "payload_too_large")


async def test_unaffordable_voice_is_402_and_nothing_is_kept(harness: Harness) -> None:
    caller = await harness.new_caller(credits=10)
    response = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "x"}, files=wav_files(2)
    )
    assert_v1_error(response, 402, "insufficient_credits")
    assert not list((harness.services.settings.data_dir / "blobs").rglob("*_ref*.wav"))


LEGACY_CREATE = "/api/open/create-model"


@pytest.mark.parametrize("path", [VOICES, LEGACY_CREATE])
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "x", "nickname": "y"}, "nickname"),
        ({"name": "x", "transcripts": ["one", "two", "three"]}, "transcripts"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "x", "description": "nul \x00 inside"}, "description"),
        ({"name": "x", "transcripts": ["fine", "bell \x07"]}, "transcripts[1]"),
        ({"name": "x", "language": "xx"}, "language"),
        ({"name": "x", "language": "english please"}, "language"),
    ],
    ids=[
        "unknown-field",
        "more-transcripts-than-files",
        "nul-in-name",
        "newline-in-name",
        "nul-in-description",
        "control-in-transcript",
        "unknown-language",
        "malformed-language",
    ],
)
async def test_form_leniencies_are_refused_by_name(
    harness: Harness, caller: Caller, path: str, data: dict[str, Any], needle: str
) -> None:
    response = await harness.client.post(path, headers=caller.headers, data=data, files=wav_files(2))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert needle in (body.get("message") or body.get("error") or "")
    assert await balance(harness, caller) == 1000
    assert not (harness.services.settings.data_dir / "blobs" / "voices").exists()


@pytest.mark.parametrize(
    "body",
    [{"modelType": "everything"}, {"modelType": 1}, {"page": "2"}, {"includePersonal": "yes"}],
)
async def test_list_models_refuses_values_it_would_ignore(
    harness: Harness, caller: Caller, body: dict[str, Any]
) -> None:
    response = await harness.client.post("/api/open/list-models", headers=caller.headers, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert next(iter(body)) in response.json()["error"]

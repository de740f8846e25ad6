"""Sync TTS on the real Piper and espeak-ng engines: formats, options, billing, bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import numpy as np
import pytest

from openfish.audio.decode import DecodedAudio, decode_audio
from openfish.engines.base import Audio, EngineError, SpeechEngine, SynthesisOptions, VoiceInfo
from openfish.engines.registry import EngineRegistry
from tests.api.test_handlers import assert_v1_error
from tests.audio_checks import mean_f0, rms_db
from tests.conftest import Caller, Harness

TTS = "/api/open/v1/speech/tts"
LEGACY_TTS = "/api/open/tts"
SENTENCE = "Hello world. This is openfish speaking, with a second clause."


def decoded(content: bytes, content_type: str) -> DecodedAudio:
    if content_type.startswith("audio/pcm"):
        assert "rate=22050" in content_type
        assert len(content) % 2 == 0
        samples = (np.frombuffer(content, dtype="<i2") / 32768).astype(np.float32)
        return DecodedAudio(samples=samples, sample_rate=22050)
    return decode_audio(content)


async def balance(harness: Harness, caller: Caller) -> int:
    return (await harness.services.accounts.get_account(caller.account_id)).credits


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [
        ("mp3", "audio/mpeg", 22050),
        ("wav", "audio/wav", 22050),
        ("pcm", "audio/pcm", 22050),
        ("opus", "audio/ogg", 48000),
        ("aac", "audio/aac", 22050),
        ("flac", "audio/flac", 22050),
    ],
)
async def test_every_format_decodes_to_speech_of_the_right_length(
    harness: Harness, caller: Caller, fmt: str, content_type: str, rate: int
) -> None:
    response = await harness.client.post(TTS, headers=caller.headers, json={"text": SENTENCE, "format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(content_type)
    audio = decoded(response.content, response.headers["Content-Type"])
    assert audio.sample_rate == rate
    assert 2.5 < audio.duration_seconds < 5.5
    assert rms_db(audio.samples) > -30
    assert response.headers["X-Characters-Used"] == str(len(SENTENCE))
    assert response.headers["X-Credits-Used"] == str(len(SENTENCE))
    assert response.headers["X-Quota-Remaining"] == str(1000 - len(SENTENCE))
    assert await balance(harness, caller) == 1000 - len(SENTENCE)


async def test_msgpack_and_json_bodies_give_the_same_speech(harness: Harness, caller: Caller) -> None:
    body = {"text": SENTENCE, "format": "wav", "reference_id": "en_US-joe-medium"}
    as_json = await harness.client.post(TTS, headers=caller.headers, json=body)
    as_msgpack = await harness.client.post(
        TTS,
        headers={**caller.headers, "Content-Type": "application/msgpack"},
        content=msgpack.packb(body),
    )
    assert as_json.status_code == as_msgpack.status_code == 200
    a, b = decoded(as_json.content, "audio/wav"), decoded(as_msgpack.content, "audio/wav")
    # Piper's duration predictor is stochastic: the same request differs slightly run to run.
    assert abs(a.duration_seconds - b.duration_seconds) < 0.15 * a.duration_seconds
    assert await balance(harness, caller) == 1000 - 2 * len(SENTENCE)


async def test_speed_two_halves_the_duration(harness: Harness, caller: Caller) -> None:
    durations = {}
    for speed in (1.0, 2.0, 0.5):
        response = await harness.client.post(
            TTS, headers=caller.headers, json={"text": SENTENCE, "format": "wav", "speed": speed}
        )
        durations[speed] = decoded(response.content, "audio/wav").duration_seconds
    # Tolerances cover Piper's stochastic durations (noise_w) from run to run.
    assert 0.4 < durations[2.0] / durations[1.0] < 0.68
    assert 1.6 < durations[0.5] / durations[1.0] < 2.4
    assert 3.0 < durations[0.5] / durations[2.0] < 5.0


async def test_volume_changes_the_level_by_the_requested_decibels(harness: Harness, caller: Caller) -> None:
    levels = {}
    for volume in (0, -12):
        response = await harness.client.post(
            TTS, headers=caller.headers, json={"text": SENTENCE, "format": "wav", "volume": volume}
        )
        levels[volume] = rms_db(decoded(response.content, "audio/wav").samples)
    assert levels[-12] - levels[0] == pytest.approx(-12, abs=1.5)


@pytest.mark.parametrize(("voice", "lowest"), [("espeak-en-us", 1.17), ("en_US-joe-medium", 1.08)])
async def test_happy_is_higher_pitched_than_calm(
    harness_factory: Callable[..., Any], voice: str, lowest: float
) -> None:
    # Piper samples noise on every call (its median F0 moves by ~10% between runs); a version with
    # the noise turned off makes both emotions start from the same speech, so only the mapping differs.
    harness: Harness = await harness_factory(
        tts={"versions": {"steady": {"noise_scale": 0, "noise_w": 0, "emotion": True}}}
    )
    caller = await harness.new_caller()
    pitch: dict[str, float] = {}
    for emotion in ("calm", "happy"):
        response = await harness.client.post(
            TTS,
            headers=caller.headers,
            json={
                "text": SENTENCE,
                "format": "wav",
                "version": "steady",
                "emotion": emotion,
                "voiceId": voice,
            },
        )
        assert response.status_code == 200, response.text
        audio = decoded(response.content, "audio/wav")
        pitch[emotion] = mean_f0(audio.samples, audio.sample_rate)
    # happy is +2.5 semitones and calm -1: 3.5 semitones apart is a factor of 1.22. On Piper's voice
    # harvest's voicing decisions move with the pitch and its median shows ~1.12 for the same shift.
    assert pitch["happy"] / pitch["calm"] > lowest


async def test_other_languages_go_to_espeak(harness: Harness, caller: Caller) -> None:
    german = await harness.client.post(
        TTS,
        headers=caller.headers,
        json={"text": "Guten Tag, wie geht es Ihnen?", "language": "de", "format": "wav"},
    )
    assert german.status_code == 200, german.text
    assert decoded(german.content, "audio/wav").duration_seconds > 1.0
    russian = await harness.client.post(
        TTS, headers=caller.headers, json={"text": "Привет, мир.", "format": "wav"}
    )
    assert russian.status_code == 200, russian.text


async def test_legacy_path_needs_reference_id_and_streams_audio(harness: Harness, caller: Caller) -> None:
    missing = await harness.client.post(LEGACY_TTS, headers=caller.headers, json={"text": "Hi."})
    assert missing.status_code == 400
    assert set(missing.json()) == {"error", "details", "code"}
    assert "reference_id" in missing.json()["error"]
    spoken = await harness.client.post(
        LEGACY_TTS, headers=caller.headers, json={"text": "Hi there.", "reference_id": "en_US-joe-medium"}
    )
    assert spoken.status_code == 200
    assert spoken.headers["Content-Type"] == "audio/mpeg"
    assert decoded(spoken.content, "audio/mpeg").duration_seconds > 0.4


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"text": ""}, "text"),
    ({"text": "   \n "}, "text"),
    ({}, "text"),
    ({"text": 5}, "text"),
    ({"text": "Hi.", "speed": 3}, "speed"),
    ({"text": "Hi.", "speed": "fast"}, "speed"),
    ({"text": "Hi.", "volume": -21}, "volume"),
    ({"text": "Hi.", "format": "aiff"}, "format"),
    ({"text": "Hi.", "version": "v9"}, "version"),
    ({"text": "Hi.", "emotion": "bored"}, "emotion"),
    ({"text": "Hi.", "emotion": "happy", "version": "v1"}, "emotion"),
    ({"text": "Hi.", "language": "xx"}, "language"),
    ({"text": "Hi.", "language": "de", "voiceId": "en_US-joe-medium"}, "language"),
    ({"text": "Hi.", "voiceId": "a", "modelId": "b"}, "voiceId"),
    ({"text": "Hi.", "cache": "yes"}, "cache"),
    ({"text": "Hi.", "unknown": 1}, "unknown"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_input_names_the_field_and_charges_nothing(
    harness: Harness, caller: Caller, body: dict[str, Any], field: str
) -> None:
    response = await harness.client.post(TTS, headers=caller.headers, json=body)
    error = assert_v1_error(response, 400, "invalid_request")
    assert field in error["message"]
    assert await balance(harness, caller) == 1000


async def test_unknown_voice_is_404(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": "Hi.", "voiceId": "nobody"}
    )
    assert_v1_error(response, 404, "not_found")
    assert await balance(harness, caller) == 1000


@pytest.mark.parametrize(
    ("content_type", "content", "status"),
    [
        ("application/msgpack", b"\xc1", 400),
        ("application/msgpack", b"\x81\xa4text", 400),
        ("application/msgpack", msgpack.packb(["text"]), 400),
        ("application/msgpack", b"\x81\xa4text\xa2\xff\xfe", 400),
        ("application/json", b'{"text": "\xff\xfe"}', 400),
        ("application/json", b'{"text": ', 400),
        ("application/json", b'{"text": "\\ud800 lone surrogate"}', 400),
        ("text/plain", b"Hello", 415),
        ("", b"Hello", 415),
    ],
)
async def test_malformed_bodies_are_refused(
    harness: Harness, caller: Caller, content_type: str, content: bytes, status: int
) -> None:
    headers = {**caller.headers, "Content-Type": content_type} if content_type else caller.headers
    response = await harness.client.post(TTS, headers=headers, content=content)
    assert response.status_code == status, response.text
    assert await balance(harness, caller) == 1000


async def test_text_over_the_limit_is_refused(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(tts={"max_text_chars": 20})
    caller = await harness.new_caller()
    response = await harness.client.post(TTS, headers=caller.headers, json={"text": "x" * 21})
    error = assert_v1_error(response, 400, "invalid_request")
    assert "20" in error["message"]


async def test_insufficient_credits_is_402_before_synthesis_and_429_on_legacy(harness: Harness) -> None:
    caller = await harness.new_caller(credits=5)
    response = await harness.client.post(TTS, headers=caller.headers, json={"text": "This is too long."})
    assert_v1_error(response, 402, "insufficient_credits")
    legacy = await harness.client.post(
        LEGACY_TTS,
        headers=caller.headers,
        json={"text": "This is too long.", "reference_id": "en_US-joe-medium"},
    )
    assert legacy.status_code == 429
    assert legacy.json()["code"] == "insufficient_credits"
    assert await balance(harness, caller) == 5
    assert harness.services.synthesis.active_streams == 0


class FailsOnSecondPiece:
    """The real Piper engine, made to fail on the second piece of text (failure injection)."""

    def __init__(self, inner: SpeechEngine) -> None:
        self._inner = inner
        self.calls = 0
        self.name = inner.name
        self.sample_rate = inner.sample_rate

    @property
    def loaded(self) -> bool:
        return self._inner.loaded

    def load(self) -> None:
        self._inner.load()

    def voices(self) -> list[VoiceInfo]:
        return self._inner.voices()

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        self.calls += 1
        if self.calls == 2:
            raise EngineError("injected failure")
        yield from self._inner.synthesize(text, options)


FAILING_TEXT = "First sentence is fine. The second one fails. A third never comes."


async def piper_wrapped_in(
    wrapper: Callable[[SpeechEngine], SpeechEngine],
    harness_factory: Callable[..., Any],
    engines: EngineRegistry,
) -> Harness:
    """An app whose only engine is the real Piper inside ``wrapper`` (failure injection)."""
    piper = engines.speech("piper")
    assert piper is not None
    only = EngineRegistry()
    only.register(wrapper(piper))
    harness: Harness = await harness_factory(engines=only)
    return harness


@pytest.fixture
async def failing_harness(harness_factory: Callable[..., Any], engines: EngineRegistry) -> Harness:
    """An app whose only engine is Piper made to fail on the second piece of text."""
    return await piper_wrapped_in(FailsOnSecondPiece, harness_factory, engines)


async def test_a_failure_after_streaming_began_is_visible_and_costs_nothing(failing_harness: Harness) -> None:
    harness = failing_harness
    caller = await harness.new_caller()
    text = FAILING_TEXT
    with pytest.raises(EngineError):
        # In-process the app's exception reaches the client; over HTTP the chunked body ends
        # without its last chunk, which HTTP clients report as an incomplete read.
        await harness.client.post(TTS, headers=caller.headers, json={"text": text, "format": "wav"})
    assert await balance(harness, caller) == 1000
    assert harness.services.synthesis.active_streams == 0


async def test_a_failed_render_for_cache_stores_and_costs_nothing(failing_harness: Harness) -> None:
    harness = failing_harness
    caller = await harness.new_caller()
    text = FAILING_TEXT
    with pytest.raises(EngineError):
        await harness.client.post(TTS, headers=caller.headers, json={"text": text, "cache": True})
    assert await balance(harness, caller) == 1000
    assert not list((harness.services.settings.data_dir / "blobs").rglob("*.mp3"))


#: Text with no letter or digit in it: punctuation, symbols, invisible and control characters.
UNSPEAKABLE = ["---", "?", "...", "()", "。", "\u200b", "\ufeff", "\u00ad", "\u007f", "\u009f", " - ! ? - "]


@pytest.mark.parametrize("text", UNSPEAKABLE)
@pytest.mark.parametrize("path", [TTS, LEGACY_TTS, "/api/open/v1/speech/tts/jobs"])
async def test_text_with_nothing_to_say_is_refused_and_free(
    harness: Harness, caller: Caller, path: str, text: str
) -> None:
    body = {"text": text, "format": "pcm"}
    if path == LEGACY_TTS:
        body["reference_id"] = "en_US-joe-medium"
    response = await harness.client.post(path, headers=caller.headers, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert "text" in response.text
    assert await balance(harness, caller) == 1000
    jobs = await harness.client.get("/api/open/v1/speech/tts/jobs", headers=caller.headers)
    assert jobs.json()["total"] == 0


async def test_msgpack_binary_is_not_taken_for_text(harness: Harness, caller: Caller) -> None:
    packed = msgpack.packb({"text": b"Hello there.", "format": "wav"}, use_bin_type=True)
    response = await harness.client.post(
        TTS, headers={**caller.headers, "Content-Type": "application/msgpack"}, content=packed
    )
    error = assert_v1_error(response, 400, "invalid_request")
    assert "text" in error["message"]
    assert await balance(harness, caller) == 1000


@pytest.mark.parametrize("content_type", ["application/json", "application/msgpack"])
async def test_deeply_nested_bodies_are_400(harness: Harness, caller: Caller, content_type: str) -> None:
    for depth in (40, 1000, 100_000):
        nested: object = []
        for _ in range(min(depth, 900)):
            nested = [nested]
        if content_type == "application/json":
            content = b'{"text": "Hi.", "x": ' + b"[" * depth + b"]" * depth + b"}"
        else:
            content = (
                msgpack.packb({"text": "Hi.", "x": nested})
                if depth < 1000
                else b"\x82"
                + (
                    msgpack.packb("text")
                    + msgpack.packb("Hi.")
                    + msgpack.packb("x")
                    + b"\x91" * depth
                    + b"\xc0"
                )
            )
        response = await harness.client.post(
            TTS, headers={**caller.headers, "Content-Type": content_type}, content=content
        )
        error = assert_v1_error(response, 400, "invalid_request")
        assert "JSON" in error["message"] or "MessagePack" in error["message"] or "nest" in error["message"]
    assert await balance(harness, caller) == 1000


class MakesNoSound(FailsOnSecondPiece):
    """The real Piper engine, made to return no samples at all (failure injection)."""

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        for audio in self._inner.synthesize(text, options):
            yield audio[:0]


@pytest.fixture
async def silent_harness(harness_factory: Callable[..., Any], engines: EngineRegistry) -> Harness:
    """An app whose only engine is Piper made to return no samples."""
    return await piper_wrapped_in(MakesNoSound, harness_factory, engines)


@pytest.mark.parametrize("fmt", ["pcm", "opus", "wav"])
async def test_an_engine_that_makes_no_audio_never_answers_an_empty_body(
    silent_harness: Harness, fmt: str
) -> None:
    harness = silent_harness
    caller = await harness.new_caller()
    body = {"text": "Hello there.", "format": fmt}
    with pytest.raises(EngineError, match="no audio"):
        await harness.client.post(TTS, headers=caller.headers, json=body)
    stored = await harness.client.post(TTS, headers=caller.headers, json={**body, "cache": True})
    error = assert_v1_error(stored, 422, "unprocessable")
    assert "no audio" in error["message"]
    assert await balance(harness, caller) == 1000
    assert harness.services.synthesis.active_streams == 0

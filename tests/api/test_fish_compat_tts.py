"""The Fish Audio API's TTS and wallet (``POST /v1/tts``, ``/wallet/self/...``) driven by the real
``fish-audio-sdk`` clients over TCP: formats, options, streaming, billing, errors, the switch."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import fish_audio_sdk
import fishaudio
import httpx
import msgpack
import pytest
from fishaudio.exceptions import APIError, AuthenticationError, NotFoundError, RateLimitError
from fishaudio.types import TTSConfig
from httpx_ws import WebSocketUpgradeError

from openfish.engines.base import Audio
from tests.api.fish_sdk import Clients, Serve, base_url, decoded
from tests.audio_checks import mean_f0, rms_db
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES, espeak_wav

SENTENCE = "Hello world. This is openfish speaking, with a second clause."
OWN_TTS = "/api/open/v1/speech/tts"


async def balance(harness: Harness, caller: Caller) -> int:
    return await harness.balance(caller.account_id)


@pytest.mark.parametrize(("fmt", "rate"), [("mp3", 22050), ("wav", 22050), ("pcm", 22050), ("opus", 48000)])
async def test_each_format_decodes_to_speech_and_costs_what_our_tts_costs(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients, fmt: str, rate: int
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    audio = await asyncio.to_thread(fish.tts.convert, text=SENTENCE, format=fmt)
    speech = decoded(audio, fmt)
    assert speech.sample_rate == rate
    assert 2.5 < speech.duration_seconds < 5.5
    assert rms_db(speech.samples) > -30
    assert await balance(harness, caller) == 1000 - len(SENTENCE)
    # Our own path charges exactly the same for the same text.
    own = await harness.client.post(OWN_TTS, headers=caller.headers, json={"text": SENTENCE, "format": fmt})
    assert own.status_code == 200
    assert await balance(harness, caller) == 1000 - 2 * len(SENTENCE)


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 16000), ("pcm", 44100), ("mp3", 44100), ("mp3", 8000)])
async def test_sample_rate_is_honoured(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients, fmt: str, rate: int
) -> None:
    fish = sdk.client(caller, await base_url(harness, serve))
    config = TTSConfig(format=fmt, sample_rate=rate)
    audio = await asyncio.to_thread(fish.tts.convert, text=SENTENCE, config=config)
    speech = decoded(audio, fmt, pcm_rate=rate)
    assert speech.sample_rate == rate
    assert 2.5 < speech.duration_seconds < 5.5
    assert rms_db(speech.samples) > -30


async def test_bitrates_are_honoured(harness: Harness, caller: Caller, serve: Serve, sdk: Clients) -> None:
    fish = sdk.client(caller, await base_url(harness, serve))
    sizes = {}
    for fmt, bitrate in (("mp3", 64), ("mp3", 192), ("opus", 24), ("opus", 64)):
        field = "mp3_bitrate" if fmt == "mp3" else "opus_bitrate"
        config = TTSConfig(format=fmt, sample_rate=44100 if fmt == "mp3" else None, **{field: bitrate})
        audio = await asyncio.to_thread(fish.tts.convert, text=SENTENCE, config=config)
        seconds = decoded(audio, fmt).duration_seconds
        sizes[fmt, bitrate] = len(audio) * 8 / seconds / 1000  # kbps as delivered
    assert 55 < sizes["mp3", 64] < 75
    assert 170 < sizes["mp3", 192] < 210
    assert sizes["opus", 64] > 1.8 * sizes["opus", 24]


async def test_prosody_speed_and_volume(harness: Harness, caller: Caller, serve: Serve, sdk: Clients) -> None:
    fish = sdk.client(caller, await base_url(harness, serve))
    plain = decoded(await asyncio.to_thread(fish.tts.convert, text=SENTENCE, format="wav"), "wav")
    config = TTSConfig(format="wav", prosody=fishaudio.types.Prosody(speed=1.5, volume=-12))
    shaped = decoded(await asyncio.to_thread(fish.tts.convert, text=SENTENCE, config=config), "wav")
    assert shaped.duration_seconds == pytest.approx(plain.duration_seconds / 1.5, rel=0.15)
    assert rms_db(shaped.samples) < rms_db(plain.samples) - 8


async def test_audio_streams_as_it_is_made(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    # The older SDK's async session yields the body as it arrives: a long text comes in many pieces,
    # and the first arrives well before the last.
    base = await base_url(harness, serve)
    text = " ".join(["This sentence is one of several that make a longer text to speak."] * 6)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    audio = b""
    async with sdk.session(caller, base) as old:
        started = loop.time()
        request = fish_audio_sdk.TTSRequest(text=text, format="wav", latency="balanced")
        async for chunk in old.tts.awaitable(request, backend="s1"):
            if chunk:
                arrivals.append(loop.time() - started)
                audio += chunk
    assert len(arrivals) > 3
    assert arrivals[0] < arrivals[-1] / 3
    assert decoded(audio, "wav").duration_seconds > 20
    assert await balance(harness, caller) == 1000 - len(text)


@pytest.mark.parametrize("model", ["s1", "s1-mini", "speech-1.5", "speech-1.6", "s2-pro", "agent-x0"])
async def test_every_sdk_model_is_accepted(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients, model: str
) -> None:
    old = sdk.session(caller, await base_url(harness, serve))
    request = fish_audio_sdk.TTSRequest(text="Which model speaks?", format="wav")
    backend: Any = model  # one of the SDK's Literal backends
    audio = b"".join(await asyncio.to_thread(lambda: list(old.tts(request, backend=backend))))
    assert decoded(audio, "wav").duration_seconds > 0.5


async def test_every_field_the_sdk_sends_is_accepted_as_json_too(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    fields = fishaudio.types.TTSRequest(text="JSON works as well.", format="wav").model_dump(
        exclude_none=True
    )
    async with httpx.AsyncClient(base_url=await base_url(harness, serve)) as http:
        response = await http.post("/v1/tts", headers={**caller.headers, "model": "s1"}, json=fields)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["X-Credits-Used"] == str(len("JSON works as well."))
    assert decoded(response.content, "wav").duration_seconds > 0.5


async def refused(call: Callable[[], Any]) -> Exception:
    try:
        await asyncio.to_thread(call)
    except Exception as exc:  # the SDK's own exception types are asserted by the caller
        return exc
    raise AssertionError("the call succeeded")


async def test_bad_input_raises_the_sdks_exceptions_and_charges_nothing(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    unknown = await refused(lambda: fish.tts.convert(text="Hello.", reference_id="voice_nope"))
    assert isinstance(unknown, NotFoundError)
    assert unknown.status == 404
    assert "voice_nope" in unknown.message
    empty = await refused(lambda: fish.tts.convert(text=""))
    assert isinstance(empty, APIError)
    assert empty.status == 400
    assert "text" in empty.message
    unspeakable = await refused(lambda: fish.tts.convert(text="... --- !!!"))
    assert isinstance(unspeakable, APIError)
    assert unspeakable.status == 400
    bad_model = await refused(lambda: fish.tts.convert(text="Hello.", model="s9"))
    assert isinstance(bad_model, APIError)
    assert bad_model.status == 400
    assert "model" in bad_model.message
    old = sdk.session(caller, base)
    not_speech = fish_audio_sdk.TTSRequest(
        text="Hello.", references=[fish_audio_sdk.ReferenceAudio(audio=b"RIFF", text="hi")]
    )
    refusal = await refused(lambda: list(old.tts(not_speech)))
    assert isinstance(refusal, fish_audio_sdk.HttpCodeErr)
    assert refusal.status == 400
    both = fishaudio.types.ReferenceAudio(audio=espeak_wav(SENTENCES[0]), text=SENTENCES[0])
    twice = await refused(
        lambda: fish.tts.convert(text="Hi.", reference_id="en_US-joe-medium", references=[both])
    )
    assert isinstance(twice, APIError)
    assert twice.status == 400
    assert "not both" in twice.message

    async with httpx.AsyncClient(base_url=base, headers=caller.headers) as http:
        packed = {"Content-Type": "application/msgpack"}
        bad_format = await http.post(
            "/v1/tts", headers=packed, content=msgpack.packb({"text": "Hi.", "format": "flac"})
        )
        malformed = await http.post("/v1/tts", headers=packed, content=b"\xc1\xff\x00")
        unknown_field = await http.post("/v1/tts", json={"text": "Hi.", "voice": "x"})
        wrong_type = await http.post("/v1/tts", headers={"Content-Type": "text/plain"}, content=b"Hi.")
    for response, status, needle in (
        (bad_format, 400, "format"),
        (malformed, 400, "MessagePack"),
        (unknown_field, 400, "voice"),
        (wrong_type, 415, "application/msgpack"),
    ):
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"status", "message"}  # the Fish envelope, which the SDKs read
        assert body["status"] == status
        assert needle in body["message"]
        assert response.headers["X-Request-Id"]
    assert await balance(harness, caller) == 1000


async def test_inline_references_change_the_voice_and_are_analysed_once(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    converter = harness.services.engines.converter(harness.services.settings.voices.converter)
    assert converter is not None
    analysed: list[int] = []
    analyse = converter.analyse

    def counted(clips: list[Audio], rate: int) -> bytes:
        analysed.append(len(clips))
        return analyse(clips, rate)

    # (The base voice's own profile is measured with it too, once: count only two-clip analyses.)
    monkeypatch.setattr(converter, "analyse", counted)
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    text = "Every morning the baker opens his shop before sunrise."
    references = [
        fishaudio.types.ReferenceAudio(audio=espeak_wav(sentence), text=sentence)
        for sentence in SENTENCES[:2]
    ]
    plain = decoded(await asyncio.to_thread(fish.tts.convert, text=text, format="wav"), "wav")
    cloned = decoded(
        await asyncio.to_thread(fish.tts.convert, text=text, format="wav", references=references), "wav"
    )
    again = decoded(
        await asyncio.to_thread(fish.tts.convert, text=text, format="wav", references=references), "wav"
    )
    assert analysed.count(2) == 1  # the same reference again: its profile is reused
    reference = decoded(espeak_wav(SENTENCES[0]), "wav")
    target = mean_f0(reference.samples, reference.sample_rate, high=500)
    base_f0 = mean_f0(plain.samples, plain.sample_rate, high=500)
    for made in (cloned, again):
        made_f0 = mean_f0(made.samples, made.sample_rate, high=500)
        # Pitch moves most of the way from the base voice toward the reference speaker (in log F0).
        assert abs(math.log(made_f0 / target)) < 0.4 * abs(math.log(base_f0 / target))
        assert abs(made.duration_seconds - plain.duration_seconds) < 0.25 * plain.duration_seconds
    # Charged per character like any TTS: the analysis itself costs nothing.
    assert await balance(harness, caller) == 1000 - 3 * len(text)

    # The older SDK's MessagePack body carries them the same way.
    old = sdk.session(caller, base)
    request = fish_audio_sdk.TTSRequest(
        text="Short.",
        format="wav",
        references=[fish_audio_sdk.ReferenceAudio(audio=r.audio, text=r.text) for r in references],
    )
    assert (
        decoded(b"".join(await asyncio.to_thread(lambda: list(old.tts(request)))), "wav").duration_seconds
        > 0.3
    )
    assert analysed.count(2) == 1

    # The voice an inline reference made is the sending account's only.
    [stored] = harness.services.blobs.list("references")
    voice_id = "ref_" + stored.key.rsplit("_", 1)[1].removesuffix(".bin")
    other = await harness.new_caller()
    response = await harness.client.post(
        OWN_TTS, headers=other.headers, json={"text": "Hi.", "voiceId": voice_id}
    )
    assert response.status_code == 404
    own = await harness.client.post(
        OWN_TTS, headers=caller.headers, json={"text": "Hi.", "voiceId": voice_id}
    )
    assert own.status_code == 200


async def test_401_402_and_429_in_the_fish_envelope(
    harness_factory: Callable[..., Awaitable[Harness]], serve: Serve, sdk: Clients
) -> None:
    harness = await harness_factory(tiers={"pro": {"requests_per_minute": 3}})
    poor = await harness.new_caller(credits=5)
    base = await base_url(harness, serve)

    stranger = sdk.client("ofk_tok_nope", base)
    unauthorized = await refused(lambda: stranger.tts.convert(text="Hello."))
    assert isinstance(unauthorized, AuthenticationError)
    assert unauthorized.status == 401

    fish = sdk.client(poor, base)
    broke = await refused(lambda: fish.tts.convert(text="Far more than five characters."))
    assert isinstance(broke, APIError)
    assert broke.status == 402
    assert await balance(harness, poor) == 5
    assert (await asyncio.to_thread(sdk.session(poor, base).get_api_credit)).credit == 5
    assert (await asyncio.to_thread(fish.account.get_credits)).credit == 5  # the third this minute

    limited = await refused(fish.account.get_credits)
    assert isinstance(limited, RateLimitError)
    assert limited.status == 429
    async with httpx.AsyncClient(base_url=base, headers=poor.headers) as http:
        response = await http.get("/wallet/self/api-credit")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert set(response.json()) == {"status", "message"}


async def test_wallet_reports_the_account(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    await asyncio.to_thread(fish.tts.convert, text="Spend a little.", format="pcm")
    left = 1000 - len("Spend a little.")
    credits = await asyncio.to_thread(fish.account.get_credits)
    assert credits.user_id == caller.account_id
    assert credits.credit == left
    assert (
        await asyncio.to_thread(fish.account.get_credits, check_free_credit=True)
    ).has_free_credit is False
    package = await asyncio.to_thread(fish.account.get_package)
    assert package.user_id == caller.account_id
    assert package.type == "pro"
    assert (package.total, package.balance) == (1000, left)  # no monthly quota: spent + balance
    assert package.finished_at is not None
    old = sdk.session(caller, base)
    assert (await asyncio.to_thread(old.get_api_credit)).credit == left
    old_package = await asyncio.to_thread(old.get_package)
    assert (old_package.total, old_package.balance) == (1000, left)


async def test_package_is_the_monthly_quota(harness: Harness, serve: Serve, sdk: Clients) -> None:
    free = await harness.new_caller(tier="free", credits=50_000)  # free tier: 10,000 credits a month
    fish = sdk.client(free, await base_url(harness, serve))
    await asyncio.to_thread(fish.tts.convert, text="Counted against the quota.", format="pcm")
    package = await asyncio.to_thread(fish.account.get_package)
    assert package.type == "free"
    assert package.total == 10_000
    assert package.balance == 10_000 - len("Counted against the quota.")
    assert (await asyncio.to_thread(fish.account.get_credits)).credit == 50_000 - len(
        "Counted against the quota."
    )


async def test_switched_off_the_fish_paths_are_gone(
    harness_factory: Callable[..., Awaitable[Harness]], serve: Serve, sdk: Clients
) -> None:
    on = await harness_factory()
    schema = (await on.client.get("/api/openapi.json")).json()
    fish_paths = {"/v1/tts", "/model", "/model/{model_id}", "/wallet/self/api-credit", "/wallet/self/package"}
    assert fish_paths <= set(schema["paths"])
    assert {"fish-audio"} == set(schema["paths"]["/v1/tts"]["post"]["tags"])

    off = await harness_factory(surfaces={"fish_compat": False})
    caller = await off.new_caller()
    schema = (await off.client.get("/api/openapi.json")).json()
    assert not fish_paths & set(schema["paths"])
    fish = sdk.client(caller, await base_url(off, serve))
    gone = await refused(lambda: fish.tts.convert(text="Hello."))
    assert isinstance(gone, NotFoundError)
    assert isinstance(await refused(fish.account.get_package), NotFoundError)
    assert isinstance(await refused(lambda: fish.voices.list()), NotFoundError)
    assert isinstance(await refused(lambda: fish.asr.transcribe(audio=b"RIFF")), NotFoundError)
    with pytest.raises(WebSocketUpgradeError):  # no socket there: the handshake is refused (403)
        await asyncio.to_thread(lambda: list(fish.tts.stream_websocket(iter(["Hello."]))))
    assert await off.balance(caller.account_id) == 1000

"""The Fish Audio API's voice models (``/model``) driven by the real ``fish-audio-sdk`` clients over
TCP: create from reference audio, analysis, list with filters, get, update, delete, cover images,
samples (the recordings, for their owner), speaking with the model, and isolation between accounts.
Task counts, sort orders and ``author_id`` are in ``test_fish_compat_model_usage.py``."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import fishaudio
import httpx
from fish_audio_sdk import HttpCodeErr, TTSRequest
from fishaudio.exceptions import APIError, NotFoundError
from fishaudio.types import Voice

from openfish.audio.decode import decode_audio
from tests.api.fish_sdk import Clients, Serve, base_url, decoded
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES, espeak_wav, silence_wav

#: A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking SDK call, off the event loop that serves the app."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def refused(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Exception:
    try:
        await call(function, *args, **kwargs)
    except Exception as exc:  # the SDK's own exception types are asserted by the caller
        return exc
    raise AssertionError("the call succeeded")


async def trained(fish: fishaudio.FishAudio, model_id: str, seconds: float = 60) -> Voice:
    """The model once its analysis has ended (the app's embedded worker runs it)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        voice: Voice = await call(fish.voices.get, model_id)
        if voice.state != "training":
            return voice
        assert asyncio.get_running_loop().time() < deadline, f"model {model_id} still training"
        await asyncio.sleep(0.1)


async def test_a_model_is_made_listed_spoken_updated_and_deleted(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    created: Voice = await call(
        fish.voices.create,
        title="Narrator",
        voices=[espeak_wav(SENTENCES[0]), espeak_wav(SENTENCES[1])],
        description="warm and clear",
        texts=[SENTENCES[0], SENTENCES[1]],
        tags=["Female", "english"],
        cover_image=PNG,
    )
    assert created.state == "training"
    assert created.title == "Narrator"
    assert created.tags == ["female", "english"]
    assert created.visibility == "private"
    assert created.author.id == caller.account_id
    assert created.languages == ["en"]
    voice = await trained(fish, created.id)
    assert voice.state == "trained"
    assert await harness.balance(caller.account_id) == 1000 - 100  # the voice's price, as on /voices

    # The cover comes back from its URL (under the server's public URL), for the owner.
    assert voice.cover_image == f"http://testserver/model/{created.id}/cover"
    async with httpx.AsyncClient(base_url=base, headers=caller.headers) as http:
        cover = await http.get(httpx.URL(voice.cover_image).path)
    assert cover.status_code == 200
    assert (cover.content, cover.headers["Content-Type"]) == (PNG, "image/png")

    # Listing: the account's own first, then built-in voices; filters narrow it.
    mine = await call(fish.voices.list, self_only=True)
    assert (mine.total, [item.id for item in mine.items]) == (1, [created.id])
    everything = await call(fish.voices.list, page_size=100)
    assert everything.items[0].id == created.id
    assert any(item.author.id == "openfish" and item.state == "trained" for item in everything.items)
    assert everything.total > 1
    page_two = await call(fish.voices.list, page_size=1, page_number=2)
    assert page_two.items[0].id == everything.items[1].id
    assert (await call(fish.voices.list, tags="female")).total == 1
    assert (await call(fish.voices.list, tags=["female", "english"])).total == 1
    assert (await call(fish.voices.list, tags=["female", "male"])).total == 0
    assert (await call(fish.voices.list, title="narr", self_only=True)).total == 1
    assert (await call(fish.voices.list, title="nobody")).total == 0
    assert (await call(fish.voices.list, language="en", self_only=True)).total == 1
    assert (await call(fish.voices.list, language="ja", self_only=True)).total == 0
    assert (await call(fish.voices.list, author_id=caller.account_id)).total == 1
    assert (await call(fish.voices.list, author_id="someone_else")).total == 0
    assert (await call(fish.voices.list, sort_by="created_at", self_only=True)).total == 1

    # The model speaks, charged per character like any TTS.
    audio = await call(
        fish.tts.convert, text="I speak in a made voice.", reference_id=created.id, format="wav"
    )
    assert decoded(audio, "wav").duration_seconds > 1
    assert await harness.balance(caller.account_id) == 1000 - 100 - len("I speak in a made voice.")

    await call(fish.voices.update, created.id, title="Storyteller", description="", tags=["calm"])
    updated: Voice = await call(fish.voices.get, created.id)
    assert (updated.title, updated.description, updated.tags) == ("Storyteller", "", ["calm"])
    assert updated.updated_at >= voice.updated_at

    await call(fish.voices.delete, created.id)
    gone = await refused(fish.voices.get, created.id)
    assert isinstance(gone, NotFoundError)
    spoken = await refused(fish.tts.convert, text="Still there?", reference_id=created.id)
    assert isinstance(spoken, NotFoundError)


async def test_models_are_isolated_between_accounts(harness: Harness, serve: Serve, sdk: Clients) -> None:
    owner, other = await harness.new_caller(), await harness.new_caller()
    base = await base_url(harness, serve)
    mine, theirs = sdk.client(owner, base), sdk.client(other, base)
    created: Voice = await call(
        mine.voices.create, title="Private one", voices=[espeak_wav(SENTENCES[2])] * 2
    )
    await trained(mine, created.id)

    for attempt in (
        lambda: theirs.voices.get(created.id),
        lambda: theirs.voices.update(created.id, title="Mine now"),
        lambda: theirs.voices.delete(created.id),
        lambda: theirs.tts.convert(text="Borrowed voice.", reference_id=created.id),
    ):
        refusal = await refused(attempt)
        assert isinstance(refusal, NotFoundError)
        assert created.id in refusal.message
    listed = await call(theirs.voices.list, page_size=100)
    assert created.id not in {item.id for item in listed.items}
    assert (await call(theirs.voices.list, self_only=True)).total == 0
    assert await harness.balance(other.account_id) == 1000

    # Made public, it is listed and usable by others, who still cannot change or delete it.
    await call(mine.voices.update, created.id, visibility="public")
    listed = await call(theirs.voices.list, page_size=100)
    shared = next(item for item in listed.items if item.id == created.id)
    assert (shared.visibility, shared.author.id) == ("public", "anonymous")
    audio = await call(theirs.tts.convert, text="Borrowed voice.", reference_id=created.id, format="wav")
    assert decoded(audio, "wav").duration_seconds > 0.5
    assert isinstance(await refused(theirs.voices.delete, created.id), NotFoundError)
    assert (await call(mine.voices.get, created.id)).title == "Private one"


async def test_the_older_session_manages_models_too(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    old = sdk.session(caller, await base_url(harness, serve))
    created = await call(
        old.create_model, title="Old school", voices=[espeak_wav(SENTENCES[3])] * 2, tags=["vintage"]
    )
    assert created.state == "training"
    assert created.id in {item.id for item in (await call(old.list_models, self_only=True)).items}
    await call(old.update_model, created.id, title="Renamed", visibility="unlist")
    got = await call(old.get_model, created.id)
    assert (got.title, got.visibility, got.tags) == ("Renamed", "unlist", ["vintage"])
    await call(old.delete_model, created.id)
    missing = await refused(old.get_model, created.id)
    assert isinstance(missing, HttpCodeErr)
    assert missing.status == 404


async def test_bad_models_are_refused_and_cost_nothing(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    base = await base_url(harness, serve)
    fish = sdk.client(caller, base)
    for kwargs, status, needle in (
        ({"voices": [b"not audio at all"]}, 400, "voices[0]"),
        ({"voices": [silence_wav()]}, 422, "voices[0]"),
        ({"voices": [espeak_wav(SENTENCES[0])], "cover_image": b"GIF? no"}, 400, "cover_image"),
        ({"voices": [espeak_wav(SENTENCES[0])], "tags": ['quote"d']}, 400, "tags[0]"),
        ({"voices": [espeak_wav(SENTENCES[0])], "texts": ["one", "two"]}, 400, "texts"),
    ):
        refusal = await refused(fish.voices.create, title="Bad", **kwargs)
        assert isinstance(refusal, APIError)
        assert refusal.status == status, refusal
        assert needle in refusal.message
    async with httpx.AsyncClient(base_url=base, headers=caller.headers) as http:
        unknown = await http.post(
            "/model", data={"title": "x", "voice_id": "y"}, files=[("voices", espeak_wav(SENTENCES[0]))]
        )
        no_files = await http.post("/model", data={"title": "x"})
    assert unknown.status_code == 400
    assert unknown.json() == {"status": 400, "message": unknown.json()["message"]}
    assert "voice_id" in unknown.json()["message"]
    assert no_files.status_code == 400
    assert isinstance(await refused(fish.voices.get, "voice_nope"), NotFoundError)
    assert isinstance(await refused(fish.voices.update, "en_US-joe-medium", title="Mine"), NotFoundError)
    assert await harness.balance(caller.account_id) == 1000
    assert (await call(fish.voices.list, self_only=True)).total == 0


async def test_a_built_in_voice_is_a_model_too(
    harness: Harness, caller: Caller, serve: Serve, sdk: Clients
) -> None:
    fish = sdk.client(caller, await base_url(harness, serve))
    joe: Voice = await call(fish.voices.get, "en_US-joe-medium")
    assert (joe.state, joe.visibility, joe.lock_visibility) == ("trained", "public", True)
    assert joe.author.id == "openfish"
    english = await call(fish.voices.list, language=["en"], page_size=100)
    assert "en_US-joe-medium" in {item.id for item in english.items}
    assert all("en" in item.languages[0].lower() for item in english.items)
    speech = TTSRequest(text="Joe speaks.", reference_id=joe.id, format="wav")
    audio = b"".join(await call(lambda: list(sdk.session(caller, fish._client_wrapper.base_url).tts(speech))))
    assert decoded(audio, "wav").duration_seconds > 0.5


async def test_an_owner_hears_the_recordings_of_a_model_and_nobody_else_does(
    harness: Harness, serve: Serve, sdk: Clients
) -> None:
    owner, other = await harness.new_caller(), await harness.new_caller()
    base = await base_url(harness, serve)
    mine, theirs = sdk.client(owner, base), sdk.client(other, base)
    clips = [espeak_wav(SENTENCES[0]), espeak_wav(SENTENCES[1])]
    created: Voice = await call(
        mine.voices.create, title="Sampled", voices=clips, texts=[SENTENCES[0]], visibility="public"
    )
    voice = await trained(mine, created.id)
    assert [(sample.title, sample.text, sample.task_id) for sample in voice.samples] == [
        ("Recording 1", SENTENCES[0], ""),
        ("Recording 2", "", ""),
    ]
    listed = await call(mine.voices.list, self_only=True)
    assert [len(item.samples) for item in listed.items] == [2]

    # Each URL is the recording, fetched with no token (the signature is the credential).
    async with httpx.AsyncClient(base_url=base) as http:
        for index, (sample, clip) in enumerate(zip(voice.samples, clips, strict=True)):
            url = httpx.URL(sample.audio)
            assert url.path == f"/api/open/v1/voices/{created.id}/samples/{index}"
            fetched = await http.get(url.path, params=url.params)
            assert fetched.status_code == 200, fetched.text
            assert fetched.headers["Content-Type"] == "audio/wav"
            heard = decoded(fetched.content, "wav").duration_seconds
            assert abs(heard - decode_audio(clip).duration_seconds) < 0.05
        first = httpx.URL(voice.samples[0].audio)
        swapped = await http.get(first.path.replace("/samples/0", "/samples/1"), params=first.params)
        unsigned = await http.get(first.path)
    assert (swapped.status_code, unsigned.status_code) == (403, 403)

    # Another account may speak with the public model, but is handed none of its recordings.
    seen: Voice = await call(theirs.voices.get, created.id)
    assert seen.samples == []
    shared = await call(theirs.voices.list, page_size=100)
    assert [item.samples for item in shared.items if item.id == created.id] == [[]]
    old = await call(sdk.session(owner, base).get_model, created.id)
    assert [sample.text for sample in old.samples] == [SENTENCES[0], ""]

    await call(mine.voices.delete, created.id)
    async with httpx.AsyncClient(base_url=base) as http:
        gone = await http.get(first.path, params=first.params)
    assert gone.status_code == 404

"""The Fish Audio API's model usage (``/model``): ``task_count`` counts each charged synthesis request
that named the model, on every path; ``sort_by`` orders by it, by ``score`` or by age; ``author_id``
narrows to one account's models without telling whether an account exists."""

from __future__ import annotations

import asyncio
from typing import Any

from fishaudio.types import ReferenceAudio
from sqlalchemy import select

from openfish.store.models import VoiceUsage
from tests.api.fish_sdk import Clients, Serve, base_url
from tests.api.test_tts_jobs import wait_for
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES, espeak_wav

JOBS = "/api/open/v1/speech/tts/jobs"


async def made_model(harness: Harness, caller: Caller, title: str, visibility: str = "private") -> str:
    """A trained model of ``caller``'s, made through ``POST /model``: its id."""
    files = [("voices", (f"{n}.wav", espeak_wav(SENTENCES[n]), "audio/wav")) for n in range(2)]
    created = await harness.client.post(
        "/model", headers=caller.headers, data={"title": title, "visibility": visibility}, files=files
    )
    assert created.status_code == 201, created.text
    model_id: str = created.json()["_id"]
    for _ in range(1200):
        if (await model(harness, caller, model_id))["state"] != "training":
            return model_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"model {model_id} still training")


async def model(harness: Harness, caller: Caller, model_id: str) -> dict[str, Any]:
    got = await harness.client.get(f"/model/{model_id}", headers=caller.headers)
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


async def listed(harness: Harness, caller: Caller, **params: Any) -> list[str]:
    page = await harness.client.get("/model", headers=caller.headers, params={"page_size": 100, **params})
    assert page.status_code == 200, page.text
    return [item["_id"] for item in page.json()["items"]]


async def fish_tts(harness: Harness, caller: Caller, **body: Any) -> int:
    spoken = await harness.client.post(
        "/v1/tts", headers={**caller.headers, "model": "s1"}, json={"format": "wav", **body}
    )
    return spoken.status_code


async def test_every_charged_path_counts_one_task(harness: Harness, serve: Serve, sdk: Clients) -> None:
    caller = await harness.new_caller(features=("realtime_tts",), credits=5000)
    voice = await made_model(harness, caller, "Counted")
    assert (await model(harness, caller, voice))["task_count"] == 0
    text = "Count me once."
    headers = caller.headers

    assert await fish_tts(harness, caller, text=text, reference_id=voice) == 200
    v1 = await harness.client.post(
        "/api/open/v1/speech/tts", headers=headers, json={"text": text, "voiceId": voice, "format": "wav"}
    )
    stored = await harness.client.post(
        "/api/open/v1/speech/tts", headers=headers, json={"text": text, "voiceId": voice, "cache": True}
    )
    openai = await harness.client.post(
        "/v1/audio/speech",
        headers=headers,
        json={"model": "tts-1", "voice": voice, "input": text, "response_format": "wav"},
    )
    assert (v1.status_code, stored.status_code, openai.status_code) == (200, 200, 200)
    job = await harness.client.post(JOBS, headers=headers, json={"text": text, "voiceId": voice})
    assert (await wait_for(harness, caller, job.json()["id"]))["status"] == "succeeded"
    fish = sdk.client(caller, await base_url(harness, serve))
    await asyncio.to_thread(lambda: list(fish.tts.stream_websocket(iter([text]), reference_id=voice)))
    assert (await model(harness, caller, voice))["task_count"] == 6

    # Refused requests count nothing; neither do requests naming no voice, nor inline references.
    assert await fish_tts(harness, caller, text=text, reference_id=voice, sample_rate=12345) == 400
    assert await fish_tts(harness, caller, text=text) == 200
    clips = [ReferenceAudio(audio=espeak_wav(sentence), text="") for sentence in SENTENCES[2:4]]
    await asyncio.to_thread(lambda: fish.tts.convert(text=text, references=clips, format="wav"))
    assert (await model(harness, caller, voice))["task_count"] == 6
    async with harness.services.db.session() as session:
        counted = set(await session.scalars(select(VoiceUsage.voice_id)))
    assert counted == {voice}

    # A built-in voice named by a request counts too, for every account that sees it.
    assert await fish_tts(harness, caller, text=text, reference_id="en_US-joe-medium") == 200
    other = await harness.new_caller()
    assert (await model(harness, other, "en_US-joe-medium"))["task_count"] == 1


async def test_models_sort_by_tasks_score_or_age(harness: Harness) -> None:
    owner, other = await harness.new_caller(), await harness.new_caller()
    older = await made_model(harness, owner, "Older")
    newer = await made_model(harness, owner, "Newer", visibility="public")
    for _ in range(3):
        assert await fish_tts(harness, owner, text="Busy.", reference_id=older) == 200
    for speaker in (owner, other):  # fewer tasks, but two accounts
        assert await fish_tts(harness, speaker, text="Shared.", reference_id=newer) == 200

    assert await listed(harness, owner, self="true") == [older, newer]  # sort_by=task_count (the SDK's)
    assert await listed(harness, owner, self="true", sort_by="task_count") == [older, newer]
    assert await listed(harness, owner, self="true", sort_by="score") == [newer, older]
    assert await listed(harness, owner, self="true", sort_by="created_at") == [newer, older]
    counts = [(await model(harness, owner, model_id))["task_count"] for model_id in (older, newer)]
    assert counts == [3, 2]

    unknown = await harness.client.get("/model", headers=owner.headers, params={"sort_by": "likes"})
    assert unknown.status_code == 400
    assert set(unknown.json()) == {"status", "message"}
    assert unknown.json()["status"] == 400
    assert "sort_by" in unknown.json()["message"]


async def test_author_id_lists_one_accounts_models_as_the_caller_may_see_them(harness: Harness) -> None:
    owner, other, quiet = await harness.new_caller(), await harness.new_caller(), await harness.new_caller()
    public = await made_model(harness, owner, "Public", visibility="public")
    private = await made_model(harness, owner, "Private")
    unlisted = await made_model(harness, owner, "Unlisted", visibility="unlist")

    mine = await listed(harness, owner, author_id=owner.account_id)
    assert sorted(mine) == sorted([public, private, unlisted])
    assert await listed(harness, other, author_id=owner.account_id) == [public]
    assert await listed(harness, other, author_id=owner.account_id, self="true") == []
    # An account without public models and one that does not exist answer alike.
    empty = {"total": 0, "items": []}
    for author in (quiet.account_id, "acct_does_not_exist"):
        page = await harness.client.get("/model", headers=other.headers, params={"author_id": author})
        assert (page.status_code, page.json()) == (200, empty)

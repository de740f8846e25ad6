"""Voices made from reference audio: lifecycle, billing, isolation, listing, legacy shapes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from openfish.audio.decode import decode_audio
from openfish.services.voices.analysis import profile_key, reference_key
from openfish.services.voices.uploads import Upload, check_uploads
from openfish.store.models import LedgerEntry, Voice
from tests.api.test_handlers import assert_v1_error
from tests.audio_checks import mean_f0
from tests.conftest import Caller, Harness
from tests.voice_clips import SENTENCES, espeak_wav, reencode

VOICES = "/api/open/v1/voices"
TTS = "/api/open/v1/speech/tts"


def reference_files() -> list[tuple[str, tuple[str, bytes, str]]]:
    name, mp3 = reencode(espeak_wav(SENTENCES[1]), "mp3")
    return [
        ("audioFiles", ("first.wav", espeak_wav(SENTENCES[0]), "audio/wav")),
        ("audioFiles", (name, mp3, "audio/mpeg")),
    ]


async def analysed(harness: Harness, caller: Caller, voice_id: str, seconds: float = 60) -> dict[str, Any]:
    """The voice once its analysis job has ended (the app's embedded worker runs it)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        voice: dict[str, Any] = (
            await harness.client.get(f"{VOICES}/{voice_id}", headers=caller.headers)
        ).json()
        if voice["status"] != "processing":
            return voice
        assert asyncio.get_running_loop().time() < deadline, f"voice {voice_id} still processing"
        await asyncio.sleep(0.05)


async def accepted_voice(harness: Harness, caller: Caller) -> Voice:
    """A voice accepted through the service (its analysis queued, its price held)."""
    references = check_uploads([Upload("a.wav", espeak_wav(SENTENCES[0]))], harness.services.settings.voices)
    return await harness.services.voices.create(
        caller.account_id,
        name="Later",
        description="",
        visibility="private",
        language="en",
        references=references,
        transcripts=[],
    )


async def make_voice(harness: Harness, caller: Caller, **fields: str) -> dict[str, Any]:
    response = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "Narrator", **fields}, files=reference_files()
    )
    assert response.status_code == 201, response.text
    return await analysed(harness, caller, response.json()["id"])


async def balance(harness: Harness, caller: Caller) -> int:
    return (await harness.services.accounts.get_account(caller.account_id)).credits


async def test_a_voice_is_made_charged_once_ready_and_speaks(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        VOICES,
        headers=caller.headers,
        data={"name": "Narrator", "description": "warm"},
        files=reference_files(),
    )
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "processing"
    assert created["provider"] == "custom"
    assert created["isPersonal"] is True
    assert created["speechSeconds"] > 3
    voice = await analysed(harness, caller, created["id"])
    assert voice["status"] == "ready"
    assert await balance(harness, caller) == 1000 - 100

    spoken = await harness.client.post(
        TTS,
        headers=caller.headers,
        json={"text": "Hello there. I speak in a made voice.", "voiceId": voice["id"]},
    )
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["Content-Type"] == "audio/mpeg"
    stored = await harness.client.post(
        TTS, headers=caller.headers, json={"text": "Stored, too.", "reference_id": voice["id"], "cache": True}
    )
    assert stored.status_code == 200
    assert (await harness.client.get(stored.json()["audio_url"])).status_code == 200


async def test_a_voice_that_is_not_ready_cannot_speak(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    # No embedded worker: the voice stays processing until a worker is started below.
    harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    voice = await accepted_voice(harness, caller)
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": "Hi.", "voiceId": voice.id}
    )
    assert "processing" in assert_v1_error(response, 409, "conflict")["message"]
    assert await balance(harness, caller) == 1000 - 100  # held while processing

    harness.services.blobs.delete(reference_key(voice.id, 0))  # its audio is gone: analysis must fail
    stop = asyncio.Event()
    worker = asyncio.create_task(harness.services.job_worker.run(stop))
    try:
        failed = await analysed(harness, caller, voice.id)
    finally:
        stop.set()
        await worker
    assert failed["status"] == "failed"
    assert failed["failureReason"]
    assert await balance(harness, caller) == 1000  # released: nobody pays for a failed voice
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": "Hi.", "voiceId": voice.id}
    )
    assert_v1_error(response, 409, "conflict")


async def test_a_voice_deleted_before_its_analysis_costs_nothing(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    response = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "Brief"}, files=reference_files()
    )
    voice_id = response.json()["id"]
    assert await balance(harness, caller) == 1000 - 100
    deleted = await harness.client.delete(f"{VOICES}/{voice_id}", headers=caller.headers)
    assert deleted.status_code == 204
    assert await balance(harness, caller) == 1000  # released with the delete

    # Its analysis job still runs later: it fails, and the price stays released (not captured).
    stop = asyncio.Event()
    worker = asyncio.create_task(harness.services.job_worker.run(stop))
    try:
        for _ in range(600):
            [job] = (await harness.services.queue.page(caller.account_id, "voice", None, 10, 0)).items
            if job.status != "queued" and job.status != "processing":
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert job.status == "failed"
    assert "deleted" in (job.error or "")
    assert await balance(harness, caller) == 1000
    async with harness.services.db.session() as session:
        kinds = await session.scalars(
            select(LedgerEntry.kind)
            .where(LedgerEntry.reference == f"voice:{voice_id}")
            .order_by(LedgerEntry.id)
        )
        assert list(kinds) == ["hold", "release"]


async def test_private_voices_are_invisible_to_other_accounts(harness: Harness, caller: Caller) -> None:
    voice = await make_voice(harness, caller)
    other = await harness.new_caller()
    for response in (
        await harness.client.get(f"{VOICES}/{voice['id']}", headers=other.headers),
        await harness.client.delete(f"{VOICES}/{voice['id']}", headers=other.headers),
        await harness.client.post(TTS, headers=other.headers, json={"text": "Hi.", "voiceId": voice["id"]}),
    ):
        assert_v1_error(response, 404, "not_found")
    listed = (await harness.client.get(VOICES, headers=other.headers, params={"provider": "custom"})).json()
    assert listed["total"] == 0
    assert await balance(harness, other) == 1000


async def test_public_voices_are_usable_by_all_and_deletable_by_the_owner_only(
    harness: Harness, caller: Caller
) -> None:
    public = await make_voice(harness, caller, visibility="public")
    unlisted = await make_voice(harness, caller, visibility="unlist")
    other = await harness.new_caller()
    spoken = await harness.client.post(
        TTS, headers=other.headers, json={"text": "Hi.", "voiceId": public["id"]}
    )
    assert spoken.status_code == 200
    assert (
        await harness.client.post(TTS, headers=other.headers, json={"text": "Hi.", "voiceId": unlisted["id"]})
    ).status_code == 200
    listed = (await harness.client.get(VOICES, headers=other.headers, params={"provider": "custom"})).json()
    assert [item["id"] for item in listed["items"]] == [public["id"]]
    assert listed["items"][0]["isPersonal"] is False
    assert_v1_error(
        await harness.client.delete(f"{VOICES}/{public['id']}", headers=other.headers), 404, "not_found"
    )
    assert (
        await harness.client.delete(f"{VOICES}/{public['id']}", headers=caller.headers)
    ).status_code == 204


async def test_delete_removes_the_voice_its_audio_and_profile(harness: Harness, caller: Caller) -> None:
    voice = await make_voice(harness, caller)
    blobs = harness.services.blobs
    assert blobs.exists(reference_key(voice["id"], 0))
    assert blobs.exists(profile_key(voice["id"]))
    assert (await harness.client.delete(f"{VOICES}/{voice['id']}", headers=caller.headers)).status_code == 204
    assert not blobs.exists(reference_key(voice["id"], 0))
    assert not blobs.exists(reference_key(voice["id"], 1))
    assert not blobs.exists(profile_key(voice["id"]))
    assert_v1_error(
        await harness.client.get(f"{VOICES}/{voice['id']}", headers=caller.headers), 404, "not_found"
    )
    assert await balance(harness, caller) == 1000 - 100  # a ready voice's price stays paid


async def test_listing_pages_filters_and_includes_builtin_voices(harness: Harness, caller: Caller) -> None:
    mine = await make_voice(harness, caller)
    first = (await harness.client.get(VOICES, headers=caller.headers, params={"limit": 2})).json()
    assert first["page"] == 1
    assert first["pageSize"] == 2
    assert first["items"][0]["id"] == mine["id"]
    total = first["total"]
    assert first["totalPages"] == -(-total // 2)
    second = (
        await harness.client.get(VOICES, headers=caller.headers, params={"limit": 2, "offset": 2})
    ).json()
    assert second["page"] == 2
    assert {i["id"] for i in second["items"]}.isdisjoint({i["id"] for i in first["items"]})
    piper = (await harness.client.get(VOICES, headers=caller.headers, params={"provider": "piper"})).json()
    assert [item["id"] for item in piper["items"]] == ["en_US-joe-medium"]
    found = (await harness.client.get(VOICES, headers=caller.headers, params={"search": "narr"})).json()
    assert [item["id"] for item in found["items"]] == [mine["id"]]
    builtin = (await harness.client.get(f"{VOICES}/en_US-joe-medium", headers=caller.headers)).json()
    assert builtin["provider"] == "piper"
    assert builtin["status"] == "ready"


async def list_models(harness: Harness, caller: Caller, **body: Any) -> dict[str, Any]:
    """The legacy list-models answer for ``body``."""
    listed = await harness.client.post("/api/open/list-models", headers=caller.headers, json=body)
    assert listed.status_code == 200, listed.text
    page: dict[str, Any] = listed.json()
    return page


async def test_legacy_model_paths(harness: Harness, caller: Caller) -> None:
    created = await harness.client.post(
        "/api/open/create-model",
        headers=caller.headers,
        data={"name": "Legacy", "description": "old client"},
        files=reference_files(),
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"modelId", "title", "description", "createdAt", "message"}
    await analysed(harness, caller, body["modelId"])
    listed = await harness.client.post(
        "/api/open/list-models",
        headers=caller.headers,
        json={"modelType": "personal", "page": 1, "pageSize": 10},
    )
    items = listed.json()["items"]
    assert [item["modelId"] for item in items] == [body["modelId"]]
    assert {"modelId", "title", "description", "created_at", "updated_at", "isPersonal"} <= set(items[0])
    # Without the account's own models, the totals and pages count only what is listed.
    everything = await list_models(harness, caller, modelType="all", pageSize=100)
    public = await list_models(harness, caller, modelType="public", pageSize=1)
    assert public["total"] == everything["total"] - 1 == public["totalPages"]
    assert [item["isPersonal"] for item in public["items"]] == [False]
    hidden = await list_models(harness, caller, modelType="personal", includePersonal=False)
    assert (hidden["items"], hidden["total"], hidden["totalPages"]) == ([], 0, 0)
    other = await harness.new_caller()
    refused = await harness.client.post(
        "/api/open/delete-model", headers=other.headers, json={"modelId": body["modelId"]}
    )
    assert refused.status_code == 404
    assert set(refused.json()) == {"error", "details", "code"}
    deleted = await harness.client.post(
        "/api/open/delete-model", headers=caller.headers, json={"modelId": body["modelId"]}
    )
    assert deleted.json()["success"] is True


async def test_the_made_voice_moves_toward_the_reference_speaker(harness: Harness, caller: Caller) -> None:
    voice = await make_voice(harness, caller)
    text = "Every morning the baker opens his shop before sunrise."
    rendered = {}
    for voice_id in ("en_US-joe-medium", voice["id"]):
        response = await harness.client.post(
            TTS, headers=caller.headers, json={"text": text, "voiceId": voice_id, "format": "wav"}
        )
        assert response.status_code == 200, response.text
        rendered[voice_id] = decode_audio(response.content)
    reference = decode_audio(espeak_wav(SENTENCES[2]))
    target = mean_f0(reference.samples, reference.sample_rate, high=500)
    base = rendered["en_US-joe-medium"]
    made = rendered[voice["id"]]
    base_f0 = mean_f0(base.samples, base.sample_rate, high=500)
    made_f0 = mean_f0(made.samples, made.sample_rate, high=500)
    # Pitch moves most of the way from the base voice toward the reference speaker (in log F0).
    assert abs(math.log(made_f0 / target)) < 0.4 * abs(math.log(base_f0 / target))
    assert abs(made.duration_seconds - base.duration_seconds) < 0.25 * base.duration_seconds


async def test_idempotency_key_makes_voice_creation_safe_to_retry(harness: Harness, caller: Caller) -> None:
    key = {**caller.headers, "Idempotency-Key": "voice-1"}
    first = await harness.client.post(VOICES, headers=key, data={"name": "Once"}, files=reference_files())
    # httpx picks a new multipart boundary for the retry: the body bytes differ, the request does not.
    again = await harness.client.post(VOICES, headers=key, data={"name": "Once"}, files=reference_files())
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await harness.client.post(VOICES, headers=key, data={"name": "Twice"}, files=reference_files())
    assert_v1_error(other, 409, "conflict")
    await analysed(harness, caller, first.json()["id"])
    listed = (await harness.client.get(VOICES, headers=caller.headers, params={"provider": "custom"})).json()
    assert listed["total"] == 1
    assert await balance(harness, caller) == 1000 - 100

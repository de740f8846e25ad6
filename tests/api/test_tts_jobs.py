"""Async TTS jobs over the API: accepted with credits held, run by the embedded worker, settled once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from openfish.audio.decode import decode_audio
from openfish.services.webhooks.rules import verify
from openfish.store.models import IdempotencyRecord, LedgerEntry
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness, Receiver

JOBS = "/api/open/v1/speech/tts/jobs"


async def wait_for(harness: Harness, caller: Caller, job_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job: dict[str, Any] = (await harness.client.get(f"{JOBS}/{job_id}", headers=caller.headers)).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def ledger(harness: Harness, reference: str) -> list[str]:
    async with harness.services.db.session() as session:
        rows = await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.reference == reference))
        return sorted(rows)


async def balance(harness: Harness, caller: Caller) -> int:
    return (await harness.services.accounts.get_account(caller.account_id)).credits


async def test_a_job_runs_and_is_charged_exactly_once(harness: Harness, caller: Caller) -> None:
    text = "Hello from an asynchronous job."
    response = await harness.client.post(JOBS, headers=caller.headers, json={"text": text, "format": "wav"})
    assert response.status_code == 202
    submitted = response.json()
    assert submitted["status"] == "queued"
    assert await balance(harness, caller) == 1000 - len(text)  # held at once
    job = await wait_for(harness, caller, submitted["id"])
    assert job["status"] == "succeeded"
    assert job["creditsUsed"] == job["characters"] == len(text)
    assert job["attempt"] == 1
    assert job["startedAt"]
    assert job["finishedAt"]
    url = urlsplit(job["audioUrl"])  # absolute, for the configured host; fetch it in-process here
    audio = await harness.client.get(f"{url.path}?{url.query}")
    assert audio.status_code == 200
    assert decode_audio(audio.content).duration_seconds > 1
    assert await ledger(harness, f"job:{job['id']}") == ["capture", "hold"]
    assert await balance(harness, caller) == 1000 - len(text)


async def test_jobs_are_listed_filtered_and_private(harness: Harness, caller: Caller) -> None:
    ids = []
    for text in ("One.", "Two.", "Three."):
        ids.append(
            (await harness.client.post(JOBS, headers=caller.headers, json={"text": text})).json()["id"]
        )
    for job_id in ids:
        await wait_for(harness, caller, job_id)
    listed = (await harness.client.get(JOBS, headers=caller.headers, params={"limit": 2})).json()
    assert listed["total"] == 3
    assert listed["totalPages"] == 2
    assert [item["id"] for item in listed["items"]] == ids[::-1][:2]
    succeeded = (
        await harness.client.get(JOBS, headers=caller.headers, params={"status": "succeeded"})
    ).json()
    assert succeeded["total"] == 3
    other = await harness.new_caller()
    assert (await harness.client.get(JOBS, headers=other.headers)).json()["total"] == 0
    assert_v1_error(await harness.client.get(f"{JOBS}/{ids[0]}", headers=other.headers), 404, "not_found")
    assert_v1_error(
        await harness.client.post(f"{JOBS}/{ids[0]}/cancel", headers=other.headers), 404, "not_found"
    )


async def test_a_queued_job_can_be_canceled_and_its_credits_come_back(
    harness_factory: Callable[..., Any],
) -> None:
    harness: Harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    job = (await harness.client.post(JOBS, headers=caller.headers, json={"text": "Never spoken."})).json()
    assert await balance(harness, caller) == 1000 - len("Never spoken.")
    canceled = await harness.client.post(f"{JOBS}/{job['id']}/cancel", headers=caller.headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert await balance(harness, caller) == 1000
    assert await ledger(harness, f"job:{job['id']}") == ["hold", "release"]
    again = await harness.client.post(f"{JOBS}/{job['id']}/cancel", headers=caller.headers)
    assert_v1_error(again, 409, "conflict")


async def test_bad_input_fails_at_submit_and_queues_nothing(harness: Harness, caller: Caller) -> None:
    for body, status in (
        ({"text": ""}, 400),
        ({"text": "Hi.", "speed": 9}, 400),
        ({"text": "Hi.", "voiceId": "nobody"}, 404),
        ({"text": "Hi.", "language": "xx"}, 400),
    ):
        response = await harness.client.post(JOBS, headers=caller.headers, json=body)
        assert response.status_code == status, response.text
    poor = await harness.new_caller(credits=3)
    assert_v1_error(
        await harness.client.post(JOBS, headers=poor.headers, json={"text": "Too long for three."}),
        402,
        "insufficient_credits",
    )
    assert (await harness.client.get(JOBS, headers=caller.headers)).json()["total"] == 0
    assert (await harness.client.get(JOBS, headers=poor.headers)).json()["total"] == 0
    assert await balance(harness, caller) == 1000
    assert await balance(harness, poor) == 3


async def test_idempotency_key_replays_the_first_answer(harness: Harness, caller: Caller) -> None:
    key = {"Idempotency-Key": "order-42"}
    body = {"text": "Charge me once."}
    first = await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)
    second = await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)
    assert first.status_code == second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert await balance(harness, caller) == 1000 - len(body["text"])
    different = await harness.client.post(JOBS, headers={**caller.headers, **key}, json={"text": "Other."})
    assert_v1_error(different, 409, "conflict")
    other = await harness.new_caller()  # keys belong to one account
    theirs = await harness.client.post(JOBS, headers={**other.headers, **key}, json=body)
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first.json()["id"]
    refused = await harness.client.post(
        JOBS, headers={**caller.headers, "Idempotency-Key": "bad key"}, json=body
    )
    assert_v1_error(refused, 400, "invalid_request")


async def test_a_failed_first_request_frees_its_key(harness: Harness) -> None:
    caller = await harness.new_caller(credits=5)
    key = {"Idempotency-Key": "retry-me"}
    body = {"text": "Eleven char"}
    assert (await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)).status_code == 402
    await harness.services.billing.top_up(caller.account_id, 100)
    assert (await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)).status_code == 202


async def test_expired_keys_do_not_replay(harness: Harness, caller: Caller) -> None:
    key = {"Idempotency-Key": "short-lived"}
    body = {"text": "Twice."}
    first = await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)
    async with harness.services.db.transaction() as session:
        record = await session.get(IdempotencyRecord, (caller.account_id, "short-lived"))
        assert record is not None
        record.expires_at = record.created_at
    assert await harness.services.idempotency.purge_expired() == 1
    second = await harness.client.post(JOBS, headers={**caller.headers, **key}, json=body)
    assert second.json()["id"] != first.json()["id"]


async def test_a_finished_job_is_announced_by_a_signed_webhook(
    harness_factory: Callable[..., Any], receiver: Receiver
) -> None:
    harness: Harness = await harness_factory(webhooks={"allow_http": True, "allow_private_targets": True})
    caller = await harness.new_caller()
    profile = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": receiver.url()}
    )
    secret = profile.json()["webhookSecret"]
    job = (
        await harness.client.post(JOBS, headers=caller.headers, json={"text": "Tell me when done."})
    ).json()
    await wait_for(harness, caller, job["id"])
    await asyncio.wait_for(receiver.arrived.wait(), 20)
    [request] = receiver.requests
    assert verify(secret, request.headers["x-openfish-signature"], request.body)
    event = json.loads(request.body)
    assert event["type"] == "tts.job.succeeded"
    assert event["jobId"] == job["id"]
    assert event["creditsUsed"] == len("Tell me when done.")
    assert "/api/open/v1/audio/" in event["resultUrl"]

"""The composition root's topology: an API node with ``jobs.embedded_worker=false`` does no background
work at all, and a worker started from the same container code does all of it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from openfish.container import build_services
from openfish.engines.registry import EngineRegistry
from openfish.store.models import WebhookDelivery
from tests.api.test_voices import reference_files
from tests.conftest import Harness, Receiver

JOBS = "/api/open/v1/speech/tts/jobs"
VOICES = "/api/open/v1/voices"


async def job_status(harness: Harness, headers: dict[str, str], job_id: str) -> str:
    status: str = (await harness.client.get(f"{JOBS}/{job_id}", headers=headers)).json()["status"]
    return status


async def voice_status(harness: Harness, headers: dict[str, str], voice_id: str) -> str:
    status: str = (await harness.client.get(f"{VOICES}/{voice_id}", headers=headers)).json()["status"]
    return status


async def delivery_attempts(harness: Harness) -> list[tuple[str, int]]:
    async with harness.services.db.session() as session:
        rows = await session.scalars(select(WebhookDelivery))
        return [(row.status, row.attempts) for row in rows]


async def test_an_api_node_without_the_embedded_worker_leaves_all_background_work_to_workers(
    harness_factory: Callable[..., Any], engines: EngineRegistry, receiver: Receiver
) -> None:
    overrides = {
        "jobs": {"embedded_worker": False},
        "webhooks": {"allow_http": True, "allow_private_targets": True},
    }
    harness: Harness = await harness_factory(**overrides)
    caller = await harness.new_caller()
    await harness.services.accounts.set_webhook(caller.account_id, receiver.url())
    job = (await harness.client.post(JOBS, headers=caller.headers, json={"text": "Made by a worker."})).json()
    await harness.services.webhooks.enqueue(caller.account_id, "evt_manual", {"type": "test.event"})
    voice = await harness.client.post(
        VOICES, headers=caller.headers, data={"name": "Made by a worker"}, files=reference_files()
    )
    assert voice.status_code == 201, voice.text
    voice_id = voice.json()["id"]

    await asyncio.sleep(2.5)  # several delivery and claim intervals of an embedded worker
    assert await job_status(harness, caller.headers, job["id"]) == "queued"
    assert await voice_status(harness, caller.headers, voice_id) == "processing"
    assert await delivery_attempts(harness) == [("pending", 0)]
    assert receiver.requests == []

    worker = build_services(harness.services.settings, engines)
    await worker.start(worker=True)
    try:
        for _ in range(300):
            if (
                await job_status(harness, caller.headers, job["id"]) == "succeeded"
                and await voice_status(harness, caller.headers, voice_id) == "ready"
                and len(receiver.requests) >= 2
            ):
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    assert await job_status(harness, caller.headers, job["id"]) == "succeeded"
    assert await voice_status(harness, caller.headers, voice_id) == "ready"
    assert sorted(status for status, _ in await delivery_attempts(harness)) == ["delivered", "delivered"]

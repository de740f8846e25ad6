"""The worker: a job it is running when told to stop goes back to the queue at once."""

from __future__ import annotations

import asyncio
from typing import Any

from openfish.jobs.queue import PROCESSING, QUEUED
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.jobs.worker import JobWorker
from openfish.store.models import Job
from tests.conftest import Caller, Harness
from tests.contracts.test_queue import queued_job


async def test_stopping_hands_the_running_job_back_without_using_an_attempt(
    harness: Harness, caller: Caller
) -> None:
    queue = SqlJobQueue(harness.services.db)
    job_id = "job_" + "d" * 32
    await queued_job(harness, caller, queue, job_id)
    started = asyncio.Event()
    settled: list[str] = []

    async def slow(_job: Job) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    async def settle(*args: Any) -> None:
        settled.append(args[1])

    worker = JobWorker(harness.services.db, queue, {"tts": slow}, {"tts": settle}, lease_seconds=30)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    async with harness.services.db.session() as session:
        during = await session.get(Job, job_id)
    assert during is not None
    assert (during.status, during.attempt) == (PROCESSING, 1)
    stop.set()
    await asyncio.wait_for(running, 10)
    async with harness.services.db.session() as session:
        after = await session.get(Job, job_id)
    assert after is not None
    assert (after.status, after.attempt, after.lease_owner) == (QUEUED, 0, None)
    assert settled == []  # not ended: nothing settled, no webhook
    # Another worker takes it straight away (no lease to wait out).
    again = await queue.claim("next", ["tts"], 30)
    assert again is not None
    assert (again.id, again.attempt) == (job_id, 1)

"""The worker: a job it is running when told to stop goes back to the queue at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.jobs.kinds import JobKind, Progress
from openfish.jobs.queue import PROCESSING, QUEUED
from openfish.jobs.service import JobService
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.jobs.worker import JobWorker
from openfish.store.models import Job
from tests.conftest import Harness
from tests.contracts.test_queue import queued_job


@dataclass(frozen=True)
class Nothing:
    """The test kind's payload: none."""


class Endless(JobKind[Nothing]):
    """A kind whose attempt runs until it is cancelled, recording what the framework asks of it."""

    name = "tts"  # the queued_job helper queues this kind
    payload_type = Nothing
    surface = "tts"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.settled_as: list[str] = []

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        self.started.set()
        await asyncio.sleep(3600)
        return {}

    async def settled(self, job: Job, status: str, error: str | None, session: AsyncSession) -> bool:
        self.settled_as.append(status)
        return True


async def test_stopping_hands_the_running_job_back_without_using_an_attempt(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    # No embedded worker: only the worker under test may claim the job.
    harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    queue = SqlJobQueue(harness.services.db)
    job_id = "job_" + "d" * 32
    await queued_job(harness, caller, queue, job_id)
    kind = Endless()
    services = harness.services
    jobs = JobService(services.db, queue, services.billing, services.webhooks, max_attempts=3)
    jobs.register(kind)
    worker = JobWorker(services.db, queue, jobs, lease_seconds=30)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(kind.started.wait(), 10)
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
    assert kind.settled_as == []  # not ended: nothing settled, no webhook
    # Another worker takes it straight away (no lease to wait out).
    again = await queue.claim("next", ["tts"], 30)
    assert again is not None
    assert (again.id, again.attempt) == (job_id, 1)

"""The queue's leases: one claimant at a time, expiry hands a job over, stale workers are ignored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from openfish.jobs.queue import FAILED, PROCESSING, SUCCEEDED, SqlJobQueue
from openfish.store.models import Job
from tests.conftest import Caller, Harness


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def queued_job(
    harness: Harness, caller: Caller, queue: SqlJobQueue, job_id: str, max_attempts: int = 2
) -> Job:
    job = queue.new_job(
        job_id=job_id,
        account_id=caller.account_id,
        kind="tts",
        payload={"text": "x"},
        credits=1,
        max_attempts=max_attempts,
    )
    async with harness.services.db.transaction() as session:
        session.add(job)
    return job


async def test_concurrent_claims_hand_each_job_to_one_worker(harness: Harness, caller: Caller) -> None:
    clock = Clock()
    queue = SqlJobQueue(harness.services.db, clock)
    for index in range(5):
        await queued_job(harness, caller, queue, f"job_{index:032d}")
    claims = await asyncio.gather(*(queue.claim(f"w{i}", ["tts"], 30) for i in range(12)))
    won = [job.id for job in claims if job is not None]
    assert sorted(won) == [f"job_{index:032d}" for index in range(5)]
    assert await queue.claim("late", ["tts"], 30) is None
    assert await queue.claim("other-kind", ["lipsync"], 30) is None


async def test_an_expired_lease_hands_the_job_over_and_the_old_worker_is_ignored(
    harness: Harness, caller: Caller
) -> None:
    clock = Clock()
    queue = SqlJobQueue(harness.services.db, clock)
    await queued_job(harness, caller, queue, "job_" + "a" * 32)
    first = await queue.claim("first", ["tts"], 30)
    assert first is not None
    assert (first.status, first.attempt) == (PROCESSING, 1)
    assert await queue.heartbeat(first, "first", 30)
    assert await queue.claim("second", ["tts"], 30) is None  # lease still held
    clock.now += timedelta(seconds=31)
    second = await queue.claim("second", ["tts"], 30)
    assert second is not None
    assert second.attempt == 2
    # The first worker wakes up: it can neither extend nor finish the job any more.
    assert not await queue.heartbeat(first, "first", 30)
    assert not await queue.finish(first, "first", SUCCEEDED, result={"audio": "stale"})
    assert await queue.finish(second, "second", SUCCEEDED, result={"audio": "fresh"})
    async with harness.services.db.session() as session:
        final = await session.get(Job, second.id)
    assert final is not None
    assert (final.status, final.result) == (SUCCEEDED, {"audio": "fresh"})


async def test_attempts_are_bounded(harness: Harness, caller: Caller) -> None:
    clock = Clock()
    queue = SqlJobQueue(harness.services.db, clock)
    await queued_job(harness, caller, queue, "job_" + "b" * 32, max_attempts=2)
    for _ in range(2):
        assert await queue.claim("dies", ["tts"], 30) is not None
        clock.now += timedelta(seconds=31)
    assert await queue.claim("dies", ["tts"], 30) is None
    [exhausted] = await queue.exhausted()
    async with harness.services.db.transaction() as session:
        assert await queue.give_up(exhausted, "gave up", session)
    async with harness.services.db.session() as session:
        job = await session.get(Job, exhausted.id)
    assert job is not None
    assert job.status == FAILED


async def test_only_queued_jobs_of_the_account_can_be_canceled(harness: Harness, caller: Caller) -> None:
    queue = SqlJobQueue(harness.services.db, Clock())
    await queued_job(harness, caller, queue, "job_" + "c" * 32)
    other = await harness.new_caller()
    async with harness.services.db.transaction() as session:
        assert not await queue.cancel("job_" + "c" * 32, other.account_id, session)
    async with harness.services.db.transaction() as session:
        assert await queue.cancel("job_" + "c" * 32, caller.account_id, session)
    async with harness.services.db.transaction() as session:
        assert not await queue.cancel("job_" + "c" * 32, caller.account_id, session)

"""The job queue contract (``openfish.jobs.queue.JobQueue``), run against every back-end: one
claimant at a time, expiry hands a job over, stale workers are ignored, attempts are bounded, and
reads are per account."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.jobs.queue import FAILED, PROCESSING, QUEUED, SUCCEEDED, JobQueue
from openfish.store.models import Job
from tests.conftest import Caller, Harness
from tests.contracts.conftest import QueueFactory


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def queued_job(
    harness: Harness, caller: Caller, queue: JobQueue, job_id: str, max_attempts: int = 2
) -> Job:
    async with harness.services.db.transaction() as session:
        return await enqueue(session, queue, caller, job_id, max_attempts)


async def enqueue(
    session: AsyncSession, queue: JobQueue, caller: Caller, job_id: str, max_attempts: int
) -> Job:
    """Queue a TTS job of ``caller`` in ``session``."""
    return await queue.enqueue(
        session,
        job_id=job_id,
        account_id=caller.account_id,
        kind="tts",
        payload={"text": "x"},
        credits=1,
        max_attempts=max_attempts,
    )


async def test_progress_and_hand_back_belong_to_the_running_attempt(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    queue = make_queue(Clock())
    await queued_job(harness, caller, queue, "job_" + "d" * 32)
    job = await queue.claim("w", ["tts"], 30)
    assert job is not None
    assert await queue.report_progress(job, "w", 40)
    assert not await queue.report_progress(job, "someone-else", 90)
    assert (await queue.owned(caller.account_id, "tts", job.id)).progress == 40  # type: ignore[union-attr]
    assert await queue.hand_back(job, "w")
    back = await queue.owned(caller.account_id, "tts", job.id)
    assert back is not None
    assert (back.status, back.attempt, back.progress) == (
        QUEUED,
        0,
        0,
    )  # the interrupted attempt is not counted
    assert not await queue.hand_back(job, "w")


async def test_reads_are_per_account_and_kind_newest_first(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    clock = Clock()
    queue = make_queue(clock)
    for index in range(3):
        await queued_job(harness, caller, queue, f"job_{index:032d}")
        clock.now += timedelta(seconds=1)
    other = await harness.new_caller()
    assert await queue.owned(other.account_id, "tts", "job_" + "0" * 32) is None
    assert await queue.owned(caller.account_id, "lipsync", "job_" + "0" * 32) is None
    page = await queue.page(caller.account_id, "tts", None, limit=2, offset=0)
    assert (page.total, page.pages(2)) == (3, 2)
    assert [job.id for job in page.items] == [f"job_{index:032d}" for index in (2, 1)]
    assert (await queue.page(caller.account_id, "tts", SUCCEEDED, 10, 0)).total == 0
    assert (await queue.page(other.account_id, "tts", None, 10, 0)).total == 0


async def test_concurrent_claims_hand_each_job_to_one_worker(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    clock = Clock()
    queue = make_queue(clock)
    for index in range(5):
        await queued_job(harness, caller, queue, f"job_{index:032d}")
    claims = await asyncio.gather(*(queue.claim(f"w{i}", ["tts"], 30) for i in range(12)))
    won = [job.id for job in claims if job is not None]
    assert sorted(won) == [f"job_{index:032d}" for index in range(5)]
    assert await queue.claim("late", ["tts"], 30) is None
    assert await queue.claim("other-kind", ["lipsync"], 30) is None


async def test_an_expired_lease_hands_the_job_over_and_the_old_worker_is_ignored(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    clock = Clock()
    queue = make_queue(clock)
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


async def test_attempts_are_bounded(harness: Harness, caller: Caller, make_queue: QueueFactory) -> None:
    clock = Clock()
    queue = make_queue(clock)
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


async def test_only_queued_jobs_of_the_account_can_be_canceled(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    queue = make_queue(Clock())
    await queued_job(harness, caller, queue, "job_" + "c" * 32)
    other = await harness.new_caller()
    async with harness.services.db.transaction() as session:
        assert not await queue.cancel("job_" + "c" * 32, other.account_id, session)
    async with harness.services.db.transaction() as session:
        assert await queue.cancel("job_" + "c" * 32, caller.account_id, session)
    async with harness.services.db.transaction() as session:
        assert not await queue.cancel("job_" + "c" * 32, caller.account_id, session)
    assert await queue.claim("w", ["tts"], 30) is None  # a canceled job never runs


async def test_a_job_is_queued_only_if_its_transaction_commits(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    queue = make_queue(Clock())

    class Refused(Exception):
        pass

    with contextlib.suppress(Refused):
        async with harness.services.db.transaction() as session:
            await enqueue(session, queue, caller, "job_" + "9" * 32, max_attempts=1)
            raise Refused  # e.g. the credit hold was refused: nothing may stay queued
    assert await queue.claim("w", ["tts"], 30) is None
    assert await queue.owned(caller.account_id, "tts", "job_" + "9" * 32) is None


async def test_a_handed_back_job_runs_again_and_an_ended_one_never(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    queue = make_queue(Clock())
    await queued_job(harness, caller, queue, "job_" + "7" * 32)
    interrupted = await queue.claim("stopping", ["tts"], 30)
    assert interrupted is not None
    assert await queue.hand_back(interrupted, "stopping")
    again = await queue.claim("next", ["tts"], 30)
    assert again is not None
    assert (again.id, again.attempt) == (interrupted.id, 1)
    assert await queue.finish(again, "next", SUCCEEDED, result={})
    assert await queue.claim("next", ["tts"], 30) is None
    assert not await queue.hand_back(again, "next")  # over: nothing to hand back
    assert await queue.claim("next", ["tts"], 30) is None


async def test_still_open_names_the_jobs_that_have_not_ended(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    queue = make_queue(Clock())
    ids = ["job_" + letter * 32 for letter in "efa"]
    for job_id in ids:
        await queued_job(harness, caller, queue, job_id)
    done = await queue.claim("w", ["tts"], 30)
    assert done is not None
    assert await queue.finish(done, "w", SUCCEEDED, result={})
    running = await queue.claim("w", ["tts"], 30)
    assert running is not None
    [waiting] = set(ids) - {done.id, running.id}
    assert await queue.still_open([*ids, "job_" + "0" * 32]) == {running.id, waiting}
    assert await queue.still_open([]) == set()


async def test_pruning_keeps_every_job_readable_and_the_unfinished_ones_runnable(
    harness: Harness, caller: Caller, make_queue: QueueFactory
) -> None:
    clock = Clock()
    queue = make_queue(clock)
    ended_id, waiting_id = "job_" + "e" * 32, "job_" + "f" * 32
    await queued_job(harness, caller, queue, ended_id)
    ended = await queue.claim("w", ["tts"], 30)
    assert ended is not None
    assert await queue.finish(ended, "w", SUCCEEDED, result={"audio": "a"})
    await queued_job(harness, caller, queue, waiting_id)
    await queue.prune(clock.now + timedelta(days=1))
    kept = await queue.owned(caller.account_id, "tts", ended_id)
    assert kept is not None
    assert (kept.status, kept.result) == (SUCCEEDED, {"audio": "a"})
    waiting = await queue.claim("w", ["tts"], 30)
    assert waiting is not None
    assert waiting.id == waiting_id

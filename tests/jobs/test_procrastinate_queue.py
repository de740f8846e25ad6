"""What procrastinate adds on PostgreSQL beyond the queue contract (``tests/contracts/test_queue.py``
runs that on it too): wake-ups across nodes, adopting the jobs of the embedded queue, the choice of
back-end, and the procrastinate rows kept in step with the jobs they dispatch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from openfish.config import Settings
from openfish.jobs.procrastinate_queue import ProcrastinateJobQueue
from openfish.jobs.queue import SUCCEEDED, JobQueue
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.store.database import Database
from openfish.store.models import utcnow
from tests.conftest import Caller, Harness
from tests.postgres import fresh_database


@pytest.fixture
async def harness(harness_factory: Callable[..., Awaitable[Harness]], postgres: str) -> Harness:
    """An app on a fresh PostgreSQL database, with no worker of its own: the tests claim."""
    return await harness_factory(database={"url": fresh_database(postgres)}, jobs={"embedded_worker": False})


@pytest.fixture
async def node(harness: Harness) -> AsyncIterator[ProcrastinateJobQueue]:
    """Another node's queue on the harness's database: its own engine, so its own connections."""
    db = Database(harness.services.db.url)
    queue = ProcrastinateJobQueue(db)
    await queue.open()
    yield queue
    await queue.close()
    await db.dispose()


async def enqueue(harness: Harness, queue: JobQueue, caller: Caller, job_id: str) -> None:
    async with harness.services.db.transaction() as session:
        await queue.enqueue(
            session,
            job_id=job_id,
            account_id=caller.account_id,
            kind="tts",
            payload={},
            credits=1,
            max_attempts=2,
        )


async def dispatch_status(harness: Harness, job_id: str) -> list[str]:
    """The statuses of the procrastinate rows that dispatch ``job_id``."""
    async with harness.services.db.session() as session:
        rows = await session.scalars(
            text("SELECT status::text FROM procrastinate_jobs WHERE args->>'job_id' = :id ORDER BY id"),
            {"id": job_id},
        )
        return list(rows)


async def test_a_job_accepted_on_one_node_wakes_a_worker_listening_on_another(
    harness: Harness, caller: Caller, node: ProcrastinateJobQueue
) -> None:
    assert isinstance(harness.services.queue, ProcrastinateJobQueue)  # the default on PostgreSQL
    woken = asyncio.Event()
    listening = asyncio.create_task(node.listen(["tts"], woken.set))
    try:
        await asyncio.sleep(1.0)  # LISTEN is issued on a connection of its own
        await enqueue(harness, harness.services.queue, caller, "job_" + "1" * 32)
        await asyncio.wait_for(woken.wait(), timeout=10)  # long before the 5 s poll would look
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    job = await node.claim("w", ["tts"], 30)
    assert job is not None
    assert job.id == "job_" + "1" * 32
    assert await dispatch_status(harness, job.id) == ["doing"]
    assert await node.finish(job, "w", SUCCEEDED, result={})
    assert await dispatch_status(harness, job.id) == ["succeeded"]
    assert await node.prune(utcnow() + timedelta(seconds=1)) == 1  # retention: dispatch history goes
    assert await dispatch_status(harness, job.id) == []
    assert await node.prune(utcnow() + timedelta(seconds=1)) == 0


async def test_jobs_queued_by_the_embedded_queue_are_adopted(
    harness: Harness, caller: Caller, node: ProcrastinateJobQueue
) -> None:
    # Queued before the database moved to procrastinate: a jobs row with no dispatch row.
    await enqueue(harness, SqlJobQueue(harness.services.db), caller, "job_" + "2" * 32)
    assert await dispatch_status(harness, "job_" + "2" * 32) == []
    job = await node.claim("w", ["tts"], 30)
    assert job is not None
    assert job.id == "job_" + "2" * 32
    assert job.queue_ref is not None
    assert await dispatch_status(harness, job.id) == ["doing"]


async def test_a_canceled_job_cancels_its_dispatch(harness: Harness, caller: Caller) -> None:
    queue = harness.services.queue
    await enqueue(harness, queue, caller, "job_" + "3" * 32)
    async with harness.services.db.transaction() as session:
        assert await queue.cancel("job_" + "3" * 32, caller.account_id, session)
    assert await dispatch_status(harness, "job_" + "3" * 32) == ["cancelled"]


@pytest.mark.parametrize(
    ("database", "queue", "chosen"),
    [
        (None, None, "database"),
        ("postgresql://db.internal/openfish", None, "procrastinate"),
        ("postgresql://db.internal/openfish", "database", "database"),
    ],
)
def test_procrastinate_is_the_queue_on_postgresql_unless_configured(
    tmp_path: Path, database: str | None, queue: str | None, chosen: str
) -> None:
    settings = Settings(data_dir=tmp_path, database={"url": database}, jobs={"queue": queue})
    assert settings.job_queue == chosen


def test_procrastinate_on_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="procrastinate needs a PostgreSQL"):
        Settings(data_dir=tmp_path, jobs={"queue": "procrastinate"})

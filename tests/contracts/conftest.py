"""Back-ends of each storage contract. Every contract test runs once per back-end listed here; a
new back-end (S3, PostgreSQL...) joins by adding its name and how to build it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from openfish.jobs.procrastinate_queue import ProcrastinateJobQueue
from openfish.jobs.queue import JobQueue
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.store.blobs import BlobStore
from openfish.store.counters import Counters, MemoryCounters
from openfish.store.local_blobs import LocalBlobStore
from openfish.store.sql_counters import SqlCounters
from tests.conftest import Harness
from tests.postgres import fresh_database
from tests.s3 import s3_blob_store

BLOB_BACKENDS = ["local", "s3"]
DATABASE_BACKENDS = ["sqlite", "postgresql"]
QUEUE_BACKENDS = ["sql", "procrastinate"]
COUNTER_BACKENDS = ["memory", "sql"]
#: Builds counters of one back-end reading time from the given clock.
CountersFactory = Callable[[Callable[[], float]], Counters]
#: The longest a slot of the database counters built here may be held before it expires.
SLOT_HOLD_SECONDS = 3600.0
#: Builds a queue of one back-end on the harness's database, reading time from the given clock.
QueueFactory = Callable[[Callable[[], datetime]], JobQueue]


@pytest.fixture(params=BLOB_BACKENDS)
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """An empty blob store of each back-end."""
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    elif request.param == "s3":
        yield s3_blob_store(request.getfixturevalue("s3_endpoint"))  # a fresh bucket
    else:  # pragma: no cover - a name without a builder is a mistake in BLOB_BACKENDS
        raise AssertionError(f"no builder for blob back-end {request.param!r}")


@pytest.fixture(params=QUEUE_BACKENDS)
async def make_queue(request: pytest.FixtureRequest, harness: Harness) -> AsyncIterator[QueueFactory]:
    """Queues of each back-end, sharing the harness's database (jobs join its transactions);
    procrastinate's only on PostgreSQL, the one database it runs on."""
    opened: list[JobQueue] = []

    def build(clock: Callable[[], datetime]) -> JobQueue:
        queue: JobQueue
        if request.param == "sql":
            queue = SqlJobQueue(harness.services.db, clock)
        elif request.param == "procrastinate":
            queue = ProcrastinateJobQueue(harness.services.db, clock)
        else:  # pragma: no cover - a name without a builder is a mistake in QUEUE_BACKENDS
            raise AssertionError(f"no builder for queue back-end {request.param!r}")
        opened.append(queue)
        return queue

    if request.param == "procrastinate" and harness.services.db.is_sqlite:
        pytest.skip("procrastinate runs on PostgreSQL only")
    yield build
    for queue in opened:
        await queue.close()


@pytest.fixture(params=COUNTER_BACKENDS)
def make_counters(request: pytest.FixtureRequest, harness: Harness) -> CountersFactory:
    """Counters of each back-end, empty; the database ones on the harness's database (so on each
    database back-end). Each call is another node: database counters built twice share counts."""
    if request.param == "memory":
        return lambda clock: MemoryCounters(clock=clock)
    if request.param == "sql":
        return lambda clock: SqlCounters(harness.services.db, hold_seconds=SLOT_HOLD_SECONDS, clock=clock)
    raise AssertionError(f"no builder for counters back-end {request.param!r}")  # pragma: no cover


@pytest.fixture(params=DATABASE_BACKENDS)
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides that put an app on each database back-end (none: the SQLite default)."""
    if request.param == "sqlite":
        return {}
    if request.param == "postgresql":
        server: str = request.getfixturevalue("postgres")
        return {"database": {"url": fresh_database(server)}}
    raise AssertionError(f"no settings for database back-end {request.param!r}")  # pragma: no cover


@pytest.fixture
async def harness(harness_factory: Callable[..., Any], database: dict[str, Any]) -> Harness:
    """In contract tests, the app (and so the ledger and the queue) on each database back-end,
    without the embedded worker: the tests claim jobs themselves, on a clock of their own, and a
    worker on the real clock would take a job whose fake lease it sees as long expired."""
    built: Harness = await harness_factory(jobs={"embedded_worker": False}, **database)
    return built

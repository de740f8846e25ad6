"""The job queue contract: enqueue in the caller's transaction, claim with a lease, heartbeat,
report progress, hand back, finish, cancel, give up, read — every change conditional on the attempt.

Workers and services are typed against :class:`JobQueue`; :mod:`openfish.jobs.sql_queue` is the
embedded implementation (jobs are rows of the main database), :mod:`openfish.jobs.procrastinate_queue`
dispatches those rows through procrastinate on PostgreSQL, and the contract tests in
``tests/contracts/test_queue.py`` run against every implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.store.models import Job

QUEUED, PROCESSING, SUCCEEDED, FAILED, CANCELED = "queued", "processing", "succeeded", "failed", "canceled"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)


@dataclass(frozen=True)
class JobPage:
    """One page of an account's jobs."""

    total: int
    items: list[Job]

    def pages(self, limit: int) -> int:
        """How many pages of ``limit`` there are."""
        return math.ceil(self.total / limit)


class JobQueue(Protocol):
    """What workers and services need from a job queue.

    A job is accepted in the caller's transaction (:meth:`enqueue`), so the credits held for it and
    the job itself are committed together or not at all. Every change a worker
    makes is conditional on its attempt still being its own: a worker that lost its lease can never
    overwrite the work of the one that took over.
    """

    #: How often a worker looks for work when nothing woke it (seconds).
    poll_seconds: float

    async def open(self) -> None:
        """Acquire what the queue needs beyond the main database (once, at start)."""
        ...

    async def close(self) -> None:
        """Release what :meth:`open` acquired."""
        ...

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        job_id: str,
        account_id: str,
        kind: str,
        payload: dict[str, Any],
        credits: int,
        max_attempts: int,
    ) -> Job:
        """Queue a job in ``session``, the caller's transaction (with its credit hold): the job is
        accepted if and only if that transaction commits."""
        ...

    async def listen(self, kinds: Sequence[str], wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever a job of ``kinds`` may have become claimable, from any process,
        until cancelled. A back-end without notifications returns at once: workers then poll."""
        ...

    async def claim(self, worker: str, kinds: Sequence[str], lease_seconds: float) -> Job | None:
        """Take the oldest runnable job of ``kinds``, or None."""
        ...

    async def heartbeat(self, job: Job, worker: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the job is no longer this worker's."""
        ...

    async def report_progress(self, job: Job, worker: str, progress: int) -> bool:
        """Record the running attempt's progress (0-100); False if the attempt lost its lease."""
        ...

    async def hand_back(self, job: Job, worker: str) -> bool:
        """Return a job this worker stopped running (shutdown) to the queue at once, without
        counting the interrupted attempt; False if the job was no longer this worker's."""
        ...

    async def finish(
        self,
        job: Job,
        worker: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        session: AsyncSession | None = None,
    ) -> bool:
        """Move the job to a terminal status; False if it is no longer this worker's."""
        ...

    async def give_up(self, job: Job, error: str, session: AsyncSession) -> bool:
        """Fail a job whose every attempt died (no worker holds it any more), in ``session``;
        False if it was settled otherwise meanwhile."""
        ...

    async def exhausted(self) -> list[Job]:
        """Processing jobs whose lease expired after their last allowed attempt (to be failed)."""
        ...

    async def cancel(self, job_id: str, account_id: str, session: AsyncSession) -> bool:
        """Cancel the account's job if it has not started, in ``session``; False otherwise."""
        ...

    async def owned(self, account_id: str, kind: str, job_id: str) -> Job | None:
        """The account's job of ``kind``, or None (also for another account's job: callers answer
        404 either way, so nobody learns that the id exists)."""
        ...

    async def page(self, account_id: str, kind: str, status: str | None, limit: int, offset: int) -> JobPage:
        """The account's jobs of ``kind``, newest first, optionally of one status."""
        ...

    async def prune(self, ended_before: datetime) -> int:
        """Delete the back-end's own records of jobs that ended before ``ended_before`` (the jobs
        themselves stay readable); how many. Nothing to do where the job rows are the queue."""
        ...

    async def still_open(self, job_ids: Collection[str]) -> set[str]:
        """Those of ``job_ids`` that exist and have not ended (queued or processing)."""
        ...

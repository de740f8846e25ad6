"""The embedded job queue: jobs are rows of the main database (SQLite by default); a claim is a
conditional update.

A claim takes a queued job, or a processing one whose lease has expired (its worker died), and
bumps ``attempt``. Every later change is an ``UPDATE ... WHERE id AND attempt AND status`` (and
lease owner), so a worker that lost its lease can never overwrite the work of the one that took
over.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.jobs.queue import CANCELED, FAILED, PROCESSING, QUEUED, SUCCEEDED, TERMINAL, JobPage
from openfish.store.database import Database
from openfish.store.leases import lease_expiry, take_row
from openfish.store.models import Job, utcnow


class SqlJobQueue:
    """The :class:`~openfish.jobs.queue.JobQueue` contract on the main database."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    #: How often a worker looks for work when nothing woke it: other processes' submissions are
    #: found only by looking (a submission in this process wakes its worker at once).
    poll_seconds = 0.25

    async def open(self) -> None:
        """Nothing to open: the queue is the main database's ``jobs`` table."""

    async def close(self) -> None:
        """Nothing to close."""

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
        """Add a queued job row to ``session`` (the caller's transaction, with its credit hold)."""
        now = self._clock()
        job = Job(
            id=job_id,
            account_id=account_id,
            kind=kind,
            status=QUEUED,
            payload=payload,
            attempt=0,
            max_attempts=max_attempts,
            run_after=now,
            credits=credits,
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        await self._dispatch(session, job)
        return job

    # What a back-end that dispatches these rows by other means adds to each change, in the same
    # transaction (``jobs/procrastinate_queue.py``); here the rows are all there is.

    async def _dispatch(self, session: AsyncSession, job: Job) -> None:
        """Make the new ``job`` findable by workers."""

    async def _requeued(self, session: AsyncSession, job: Job) -> None:
        """``job`` was handed back: make it findable again."""

    async def _ended(self, session: AsyncSession, job: Job, status: str) -> None:
        """``job`` ended with ``status``: it is never to be found again."""

    async def listen(self, kinds: Sequence[str], wake: Callable[[], None]) -> None:
        """No notifications: another process's jobs are found by polling (``poll_seconds``)."""

    async def claim(self, worker: str, kinds: Sequence[str], lease_seconds: float) -> Job | None:
        now = self._clock()
        runnable = self._runnable(kinds, now)
        for _ in range(5):  # another worker may win the race for a candidate: try the next one
            async with self._db.session() as session:
                candidate = await session.scalar(
                    select(Job).where(runnable).order_by(Job.created_at, Job.id).limit(1)
                )
            if candidate is None:
                return None
            async with self._db.transaction() as session:
                if taken := await self._take(session, candidate, worker, kinds, lease_seconds, now):
                    return taken
        return None

    @staticmethod
    def _runnable(kinds: Sequence[str], now: datetime) -> ColumnElement[bool]:
        """Jobs of ``kinds`` a worker may start at ``now``: queued, or processing under a lease that
        ran out (its worker died), with an attempt left."""
        return and_(
            Job.kind.in_(kinds),
            Job.attempt < Job.max_attempts,
            or_(
                and_(Job.status == QUEUED, Job.run_after <= now),
                and_(Job.status == PROCESSING, Job.lease_expires_at < now),
            ),
        )

    async def _take(
        self,
        session: AsyncSession,
        candidate: Job,
        worker: str,
        kinds: Sequence[str],
        lease_seconds: float,
        now: datetime,
    ) -> Job | None:
        """Start the next attempt of ``candidate`` for ``worker`` in ``session`` if it is still
        runnable (see :func:`~openfish.store.leases.take_row`); the job as taken, or None."""
        taken = await take_row(
            session,
            candidate,
            Job.attempt,
            still=[self._runnable(kinds, now)],
            values={
                "status": PROCESSING,
                "lease_owner": worker,
                "lease_expires_at": lease_expiry(now, lease_seconds),
                "progress": 0,  # a retried attempt starts over
                "started_at": now,
                "updated_at": now,
            },
        )
        return await session.get(Job, candidate.id, populate_existing=True) if taken else None

    async def exhausted(self) -> list[Job]:
        """Processing jobs whose lease expired after their last allowed attempt (to be failed)."""
        now = self._clock()
        async with self._db.session() as session:
            rows = await session.scalars(
                select(Job).where(
                    Job.status == PROCESSING, Job.lease_expires_at < now, Job.attempt >= Job.max_attempts
                )
            )
            return list(rows)

    async def heartbeat(self, job: Job, worker: str, lease_seconds: float) -> bool:
        now = self._clock()
        return await self._update_mine(
            job, worker, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now
        )

    async def report_progress(self, job: Job, worker: str, progress: int) -> bool:
        return await self._update_mine(
            job, worker, progress=max(0, min(100, progress)), updated_at=self._clock()
        )

    async def hand_back(self, job: Job, worker: str) -> bool:
        now = self._clock()
        async with self._db.transaction() as session:
            handed = await self._update_mine(
                job,
                worker,
                session=session,
                status=QUEUED,
                attempt=Job.attempt - 1,
                lease_owner=None,
                lease_expires_at=None,
                progress=0,
                run_after=now,
                updated_at=now,
            )
            if handed:
                await self._requeued(session, job)
            return handed

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
        if status not in TERMINAL:
            raise ValueError(f"{status} is not a terminal status")
        if session is None:
            async with self._db.transaction() as own:
                return await self.finish(job, worker, status, result=result, error=error, session=own)
        now = self._clock()
        finished = await self._update_mine(
            job,
            worker,
            session=session,
            status=status,
            result=result,
            error=error,
            progress=100 if status == SUCCEEDED else Job.progress,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        if finished:
            await self._ended(session, job, status)
        return finished

    async def give_up(self, job: Job, error: str, session: AsyncSession) -> bool:
        """Fail a job whose every attempt died (no worker holds it any more)."""
        now = self._clock()
        outcome = await session.execute(
            update(Job)
            .where(
                Job.id == job.id,
                Job.attempt == job.attempt,
                Job.status == PROCESSING,
                Job.lease_expires_at < now,
            )
            .values(
                status=FAILED,
                error=error,
                finished_at=now,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        given_up = bool(outcome.rowcount == 1)  # type: ignore[attr-defined]
        if given_up:
            await self._ended(session, job, FAILED)
        return given_up

    async def cancel(self, job_id: str, account_id: str, session: AsyncSession) -> bool:
        """Cancel a job that has not started; False if it is not queued (or not the account's)."""
        now = self._clock()
        outcome = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.account_id == account_id, Job.status == QUEUED)
            .values(status=CANCELED, finished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    async def owned(self, account_id: str, kind: str, job_id: str) -> Job | None:
        """The account's job of ``kind``, or None (also for another account's job: callers answer
        404 either way, so nobody learns that the id exists)."""
        async with self._db.session() as session:
            job = await session.get(Job, job_id)
        if job is None or job.account_id != account_id or job.kind != kind:
            return None
        return job

    async def page(self, account_id: str, kind: str, status: str | None, limit: int, offset: int) -> JobPage:
        """The account's jobs of ``kind``, newest first, optionally of one status."""
        query = select(Job).where(Job.account_id == account_id, Job.kind == kind)
        if status:
            query = query.where(Job.status == status)
        async with self._db.session() as session:
            total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = await session.scalars(
                query.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
            )
            return JobPage(total=total, items=list(rows))

    async def prune(self, ended_before: datetime) -> int:
        """Nothing: the job rows are the queue, and they stay readable."""
        return 0

    async def still_open(self, job_ids: Collection[str]) -> set[str]:
        """Those of ``job_ids`` that exist and have not ended (queued or processing)."""
        if not job_ids:
            return set()
        async with self._db.session() as session:
            rows = await session.scalars(
                select(Job.id).where(Job.id.in_(list(job_ids)), Job.status.not_in(TERMINAL))
            )
            return set(rows)

    async def _update_mine(
        self, job: Job, worker: str, *, session: AsyncSession | None = None, **values: Any
    ) -> bool:
        """Set ``values`` on the job if this attempt is still ``worker``'s (in ``session``, or in a
        transaction of its own); False when the attempt lost its lease."""
        statement = update(Job).where(self._mine(job, worker)).values(**values)
        statement = statement.execution_options(synchronize_session=False)
        if session is not None:
            outcome = await session.execute(statement)
        else:
            async with self._db.transaction() as own:
                outcome = await own.execute(statement)
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    def _mine(self, job: Job, worker: str) -> Any:
        return and_(
            Job.id == job.id, Job.attempt == job.attempt, Job.status == PROCESSING, Job.lease_owner == worker
        )

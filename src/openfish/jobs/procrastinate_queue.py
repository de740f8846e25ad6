"""The job queue on procrastinate (PostgreSQL): procrastinate dispatches, the ``jobs`` table records.

Every job is two rows in one database: openfish's ``jobs`` row (account, payload, credits, status,
progress, result: what the API reads and the worker settles) and a procrastinate job
(``procrastinate_jobs``, task :data:`TASK`, queue = the job's kind, ``args = {"job_id": ...}``)
that decides who runs it next. ``jobs.queue_ref`` links the two.

What procrastinate brings: ``SELECT ... FOR UPDATE SKIP LOCKED`` dispatch (concurrent workers never
contend for one row), LISTEN/NOTIFY wake-ups (a job accepted on any API node wakes an idle worker
on any machine at once, instead of at its next poll), the event history of every job, and its
admin CLI (``openfish queue ...``: list, retry, cancel, health checks).

How the guarantees of the embedded queue carry over:

- **Accepted with its credits.** procrastinate's own ``defer`` runs on its own connection, so it
  could not join the transaction that holds the credits. :meth:`enqueue` therefore calls the SQL
  function behind it (``procrastinate_defer_jobs_v1``) in the caller's transaction: the job, its
  dispatch row and the hold commit together or not at all, and the NOTIFY goes out on commit.
- **Fenced attempts.** A claim fetches a procrastinate job and, in the same transaction, starts the
  next attempt of its ``jobs`` row exactly as the embedded queue does (attempt counter, lease); every
  later write is conditional on that attempt, so a worker that lost its job changes nothing.
- **Stalled jobs.** A worker keeps its lease alive (``heartbeat``); when a lease runs out (the
  worker was killed), the next claim anywhere hands the procrastinate job back to ``todo`` with
  procrastinate's retry, and it runs again, up to ``max_attempts``. One notion of liveness (the
  lease) serves both tables, so they can never disagree about whether a worker is alive.
- **Settled once.** Finishing, giving up, handing back and cancelling change both rows in one
  transaction: the terminal ``jobs`` row, the ledger, the webhook event and procrastinate's status.
  A procrastinate job whose ``jobs`` row already ended (cancelled before it started, or retried by
  hand from the admin CLI) is closed when fetched, never run.

The procrastinate schema is installed by migration 0008. procrastinate's own worker is not used:
:class:`~openfish.jobs.worker.JobWorker` runs jobs on every back-end alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import procrastinate
from procrastinate.exceptions import ConnectorException
from sqlalchemy import ColumnElement, column, delete, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.jobs.queue import CANCELED, FAILED, PROCESSING, QUEUED, SUCCEEDED, TERMINAL
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.store.database import Database
from openfish.store.models import Job, utcnow

logger = logging.getLogger("openfish.jobs")

#: The procrastinate task name of every openfish job (the kind is the queue name).
TASK = "openfish.job"
#: The procrastinate status a job's dispatch row ends in, by the job's terminal status.
_ENDS = {SUCCEEDED: "succeeded", FAILED: "failed", CANCELED: "aborted"}
#: The longest wait before listening again after the database went away.
_MAX_LISTEN_BACKOFF = 10.0

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), NULL)]::procrastinate_job_to_defer_v1[]))"
)
_FETCH = text("SELECT id, args FROM procrastinate_fetch_job_v2(CAST(:queues AS varchar[]), NULL)")
# Finish and retry lock the dispatch row first and act only if it is in a state they apply to:
# procrastinate's functions raise otherwise, and the row may have been ended meanwhile (by the
# admin CLI, or by a claim that found its job row over).
_FINISH = text(
    "SELECT procrastinate_finish_job_v1(id, CAST(:status AS procrastinate_job_status), false) FROM"
    " (SELECT id FROM procrastinate_jobs WHERE id = :ref AND status IN ('todo', 'doing') FOR UPDATE) AS j"
)
_RETRY = text(
    "SELECT procrastinate_retry_job_v2(id, :at, NULL, NULL, NULL) FROM"
    " (SELECT id FROM procrastinate_jobs WHERE id = :ref AND status = 'doing' FOR UPDATE) AS j"
)
_CANCEL = text("SELECT procrastinate_cancel_job_v1(:ref, false, false)")
_dispatch = table("procrastinate_jobs", column("id"), column("status"))
_DOING: ColumnElement[str] = literal_column("'doing'::procrastinate_job_status")
_OPEN: tuple[ColumnElement[str], ...] = (_DOING, literal_column("'todo'::procrastinate_job_status"))


class ProcrastinateJobQueue(SqlJobQueue):
    """The :class:`~openfish.jobs.queue.JobQueue` contract with procrastinate dispatching the rows
    of the main database (PostgreSQL only)."""

    #: Notifications wake workers; the poll is the safety net (and the pace of stalled-job recovery).
    poll_seconds = 5.0

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        if db.is_sqlite:
            raise ValueError("the procrastinate job queue needs PostgreSQL")
        super().__init__(db, clock)
        # Its pool opens connections only when asked: an API node only enqueues, through the main
        # database's own transactions, and never uses it; a worker uses one connection to LISTEN.
        conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=0, max_size=2)
        )
        self._adopted = False

    async def open(self) -> None:
        """Open procrastinate's connector (no connection is made until one is needed)."""
        await self.app.open_async()

    async def close(self) -> None:
        """Close procrastinate's connector."""
        await self.app.close_async()

    async def _dispatch(self, session: AsyncSession, job: Job) -> None:
        """Give the new job its procrastinate job, in the same transaction: both or neither commit."""
        job.queue_ref = await _defer(session, job)

    async def listen(self, kinds: Sequence[str], wake: Callable[[], None]) -> None:
        """Wake on procrastinate's NOTIFY for ``kinds``, listening again (with a growing pause)
        whenever the connection is lost; until cancelled."""

        async def notified(**_: object) -> None:
            wake()

        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                await self.app.job_manager.listen_for_jobs(on_notification=notified, queues=kinds)
            except ConnectorException as exc:
                logger.warning("job queue: not listening (%s); again in %.1f s", exc, backoff)
            if time.monotonic() - started > _MAX_LISTEN_BACKOFF:
                backoff = 0.5  # it listened a while: this is a new outage, not the same one
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, _MAX_LISTEN_BACKOFF)
            wake()  # jobs may have been queued while nobody listened

    async def claim(self, worker: str, kinds: Sequence[str], lease_seconds: float) -> Job | None:
        now = self._clock()
        if not self._adopted:
            await self._adopt_unlinked()
            self._adopted = True
        async with self._db.transaction() as session:
            await self._requeue_stalled(session, kinds, now)
        for _ in range(5):  # a fetched job may already be over: close it and fetch the next
            async with self._db.transaction() as session:
                fetched = (await session.execute(_FETCH, {"queues": list(kinds)})).one()
                if fetched.id is None:
                    return None
                job = await session.get(Job, fetched.args["job_id"])
                if job is not None:
                    taken = await self._take(session, job, worker, kinds, lease_seconds, now)
                    if taken is not None:
                        return taken
                await self._not_runnable(session, fetched.id, job)
        return None

    async def _requeued(self, session: AsyncSession, job: Job) -> None:
        """Its procrastinate job goes back to ``todo``, to be fetched again at once."""
        await session.execute(_RETRY, {"ref": job.queue_ref, "at": None})

    async def _ended(self, session: AsyncSession, job: Job, status: str) -> None:
        """Its procrastinate job ends as the job did (an adopted job may not have one yet)."""
        if job.queue_ref is not None:
            await session.execute(_FINISH, {"ref": job.queue_ref, "status": _ENDS[status]})

    async def cancel(self, job_id: str, account_id: str, session: AsyncSession) -> bool:
        # procrastinate's row first, as a claim locks them (dispatch row, then job row): two
        # transactions taking the same two locks in opposite orders could deadlock.
        ref = await session.scalar(
            select(Job.queue_ref).where(Job.id == job_id, Job.account_id == account_id, Job.status == QUEUED)
        )
        if ref is not None:
            await session.execute(_CANCEL, {"ref": ref})  # no-op once fetched: then the claim wins
        return await super().cancel(job_id, account_id, session)

    async def prune(self, ended_before: datetime) -> int:
        """Delete the procrastinate rows (and, by cascade, their events) of jobs that ended before
        ``ended_before``: dispatch history nobody reads once the ``jobs`` row has ended."""
        async with self._db.transaction() as session:
            pruned = await session.execute(
                delete(_dispatch)
                .where(
                    _dispatch.c.id == Job.queue_ref,
                    Job.status.in_(TERMINAL),
                    Job.finished_at < ended_before,
                    _dispatch.c.status.not_in(_OPEN),
                )
                .execution_options(synchronize_session=False)
            )
        return int(pruned.rowcount)  # type: ignore[attr-defined]

    async def _requeue_stalled(self, session: AsyncSession, kinds: Sequence[str], now: datetime) -> None:
        """Hand back to procrastinate the jobs whose worker's lease ran out (a killed worker), if an
        attempt is left; the exhausted ones are failed by the worker (``exhausted``/``give_up``)."""
        stalled = await session.scalars(
            select(_dispatch.c.id)
            .join(Job, Job.queue_ref == _dispatch.c.id)
            .where(
                _dispatch.c.status == _DOING,
                Job.kind.in_(kinds),
                Job.status == PROCESSING,
                Job.lease_expires_at < now,
                Job.attempt < Job.max_attempts,
            )
            .with_for_update(of=_dispatch, skip_locked=True)  # another claimer is on it: leave it
        )
        for ref in stalled:
            await session.execute(_RETRY, {"ref": ref, "at": None})

    async def _not_runnable(self, session: AsyncSession, ref: int, job: Job | None) -> None:
        """A fetched procrastinate job whose ``jobs`` row cannot start now: close it when the row has
        ended (or is gone), else put it back for when the row's lease runs out."""
        if job is None or job.status in TERMINAL:
            status = FAILED if job is None else job.status
            await session.execute(_FINISH, {"ref": ref, "status": _ENDS[status]})
        elif job.status == PROCESSING and job.attempt >= job.max_attempts:
            # No attempt left: a worker fails the job row (``exhausted``, ``give_up``).
            await session.execute(_FINISH, {"ref": ref, "status": "failed"})
        else:
            # Still running under a live lease (fetched through a second dispatch row, or by hand).
            await session.execute(_RETRY, {"ref": ref, "at": job.lease_expires_at})

    async def _adopt_unlinked(self) -> None:
        """Give a procrastinate job to every unfinished job that has none: jobs queued by the
        embedded queue before this database moved to procrastinate."""
        async with self._db.transaction() as session:
            unlinked = await session.scalars(
                select(Job)
                .where(Job.queue_ref.is_(None), Job.status.in_((QUEUED, PROCESSING)))
                .with_for_update(skip_locked=True)  # two workers starting at once adopt each job once
            )
            adopted = 0
            for job in unlinked:
                job.queue_ref = await _defer(session, job)
                adopted += 1
        if adopted:
            logger.info("job queue: %d earlier jobs handed to procrastinate", adopted)


async def _defer(session: AsyncSession, job: Job) -> int:
    """Create the procrastinate job of ``job`` in ``session``; its id."""
    ref = await session.scalar(
        _DEFER, {"queue": job.kind, "task": TASK, "args": json.dumps({"job_id": job.id})}
    )
    if ref is None:  # pragma: no cover - the function returns one id per job given
        raise RuntimeError("procrastinate did not queue the job")
    return int(ref)

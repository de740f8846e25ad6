"""Workers: claim jobs of every registered kind, run them with a heartbeat and progress reports,
settle the outcome atomically.

A job's terminal status and its consequences (the kind's rows, credits captured or released, the
webhook event queued) are written in one transaction, so a crash leaves either the job still
running (its lease expires and another worker runs it again) or everything settled — never half.
File clean-up follows the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from openfish.jobs.kinds import JobFailed, Progress
from openfish.jobs.queue import FAILED, SUCCEEDED, JobQueue
from openfish.jobs.service import JobService
from openfish.store.database import UNAVAILABLE, Database
from openfish.store.models import Job

logger = logging.getLogger("openfish.jobs")
#: How often a running job's progress is written (at most).
PROGRESS_SECONDS = 1.0
#: The longest wait between two looks for work while the database is unavailable.
MAX_BACKOFF_SECONDS = 10.0
#: Waits between tries to save a finished job's outcome while the database is unavailable (~1 min).
FINISH_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 16, 30)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def worker_name() -> str:
    """A name unique to this worker: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobWorker:
    """Runs up to ``concurrency`` jobs at a time until told to stop."""

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        jobs: JobService,
        *,
        concurrency: int = 2,
        lease_seconds: float = 30.0,
        poll_seconds: float = 0.25,
        name: str | None = None,
    ) -> None:
        self._db = db
        self._queue = queue
        self._jobs = jobs
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._poll = poll_seconds
        self.name = name or worker_name()
        self._running: dict[asyncio.Task[None], Job] = {}
        # Made in run(): an Event belongs to the loop it is first used on, and an app may be
        # started more than once (tests, restarts) on different loops.
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        """A job was just queued: look now instead of at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until ``stop`` is set. Jobs under way then are interrupted and handed
        back to the queue, so another worker (or this one after a restart) takes them at once."""
        wake = self._wake = asyncio.Event()
        backoff = self._poll
        listener = asyncio.create_task(self._queue.listen(self._jobs.kind_names, self.wake))
        try:
            while not stop.is_set():
                try:
                    await self._fail_exhausted()
                    await self._claim_what_fits(stop)
                except UNAVAILABLE as exc:
                    # The database went away: wait (longer each time) and look again; running jobs
                    # carry on and settle once it is back.
                    logger.warning("job worker: database unavailable (%s); retrying in %.1f s", exc, backoff)
                    await _sleep_unless(stop, backoff)
                    backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)
                    continue
                backoff = self._poll
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._poll)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            interrupted = dict(self._running)
            for task in interrupted:
                task.cancel()
            await asyncio.gather(*interrupted, return_exceptions=True)
            for task, job in interrupted.items():
                # Without the database the job cannot be handed back: its lease runs out instead.
                with contextlib.suppress(*UNAVAILABLE):
                    if task.cancelled() and await self._queue.hand_back(job, self.name):
                        logger.info("job %s handed back to the queue (worker stopping)", job.id)

    async def _claim_what_fits(self, stop: asyncio.Event) -> None:
        while len(self._running) < self._concurrency and not stop.is_set():
            job = await self._queue.claim(self.name, self._jobs.kind_names, self._lease)
            if job is None:
                return
            task = asyncio.create_task(self._run(job), name=f"job {job.id}")
            self._running[task] = job
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        job = self._running.pop(task, None)
        if not task.cancelled() and task.exception() is not None and job is not None:
            logger.error(
                "job %s: its result could not be saved; the job will run again",
                job.id,
                exc_info=task.exception(),
            )

    async def _run(self, job: Job) -> None:
        progress = Progress()
        heartbeat = asyncio.create_task(self._heartbeat(job, asyncio.current_task()))
        reporter = asyncio.create_task(self._report(job, progress))
        try:
            result = await self._jobs.run(job, progress)
        except JobFailed as exc:
            await self._finish(job, FAILED, None, str(exc)[:1000])
        except asyncio.CancelledError:
            raise  # shutdown or lost lease: the lease expires and the job runs again
        except Exception as exc:  # an unexpected failure: log it, let the lease expire, retry
            logger.exception(
                "job %s attempt %s crashed; it will be retried", job.id, job.attempt, exc_info=exc
            )
        else:
            await self._finish(job, SUCCEEDED, result, None)
        finally:
            heartbeat.cancel()
            reporter.cancel()
            await asyncio.gather(heartbeat, reporter, return_exceptions=True)
            self.wake()  # a slot is free: claim the next job now, not at the next poll

    async def _heartbeat(self, job: Job, runner: asyncio.Task[Any] | None) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                mine = await self._queue.heartbeat(job, self.name, self._lease)
            except UNAVAILABLE:
                continue  # try again next time; if the lease runs out meanwhile, finish is refused
            if not mine and runner is not None:
                logger.warning("job %s: lease lost, abandoning attempt %s", job.id, job.attempt)
                runner.cancel()
                return

    async def _report(self, job: Job, progress: Progress) -> None:
        sent = 0
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            if progress.percent != sent:
                with contextlib.suppress(*UNAVAILABLE):  # progress is advisory: the next report will do
                    await self._queue.report_progress(job, self.name, progress.percent)
                    sent = progress.percent

    async def _finish(self, job: Job, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        # The work is done: keep trying to record it while the database is briefly away (a restart,
        # a fail-over) rather than throwing the work away and running the job again.
        for delay in (*FINISH_RETRY_SECONDS, None):
            try:
                await self._finish_once(job, status, result, error)
                return
            except UNAVAILABLE as exc:
                if delay is None:
                    raise
                logger.warning("job %s: database unavailable (%s); saving again in %s s", job.id, exc, delay)
                await asyncio.sleep(delay)

    async def _finish_once(
        self, job: Job, status: str, result: dict[str, Any] | None, error: str | None
    ) -> None:
        async with self._db.transaction() as session:
            ended = await self._queue.finish(
                job, self.name, status, result=result, error=error, session=session
            )
            if ended:
                await self._jobs.settle(job, status, result, error, session)
        if ended:
            await self._jobs.cleanup(job)
        else:
            logger.warning(
                "job %s attempt %s finished after losing its lease; result dropped", job.id, job.attempt
            )

    async def _fail_exhausted(self) -> None:
        for job in await self._queue.exhausted():
            error = f"gave up after {job.attempt} attempts (the worker stopped each time)"
            async with self._db.transaction() as session:
                ended = await self._queue.give_up(job, error, session)
                if ended:
                    await self._jobs.settle(job, FAILED, None, error, session)
            if ended:
                await self._jobs.cleanup(job)

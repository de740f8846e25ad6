"""The one job framework: every kind is submitted, read, canceled and settled the same way.

* **Submit with hold** — the job row, its credit hold and any rows of the kind's own (a voice) are
  written in one transaction: a job is never queued unpaid, credits are never held for no job.
* **Settle with webhook** — the terminal status (written by the queue), the kind's own rows, the
  capture or release of the credits and the webhook event commit together, exactly once.
* **Clean up after commit** — file work (deleting kept inputs) runs after that transaction, so a
  slow disk or object store never holds the database's write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.errors import Conflict, NotFound
from openfish.jobs.kinds import BlobArea, JobKind, P, Progress
from openfish.jobs.queue import CANCELED, SUCCEEDED, JobPage, JobQueue
from openfish.services.accounts.billing import BillingService
from openfish.services.runtime.ids import new_id
from openfish.services.runtime.workers import WorkerPool
from openfish.services.webhooks.delivery import WebhookService
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Job

logger = logging.getLogger("openfish.jobs")


class JobService:
    """Submits, reads, cancels, runs and settles jobs of every registered kind."""

    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        billing: BillingService,
        webhooks: WebhookService,
        *,
        max_attempts: int,
    ) -> None:
        self._db = db
        self._queue = queue
        self._billing = billing
        self._webhooks = webhooks
        self._max_attempts = max_attempts
        self._kinds: dict[str, JobKind[Any]] = {}
        self._on_submit: list[Callable[[], None]] = []

    def register(self, kind: JobKind[Any]) -> None:
        """Make ``kind`` runnable (once per name)."""
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    @property
    def kind_names(self) -> list[str]:
        """Names of the registered kinds (what a worker claims)."""
        return list(self._kinds)

    def on_submit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each submit (the embedded worker looks at once, not at its next poll)."""
        self._on_submit.append(listener)

    async def submit(
        self,
        kind: JobKind[P],
        account_id: str,
        payload: P,
        *,
        credits: int,
        units: int = 0,
        job_id: str | None = None,
        rows: Iterable[object] = (),
    ) -> Job:
        """Queue a job with its credits held and ``rows`` added, all in one transaction; 402 (and
        nothing written) when the account cannot afford it. Check everything that can be checked
        before calling: a job that is accepted should be able to run."""
        async with self._db.transaction() as session:
            for row in rows:
                session.add(row)
            job = await self._queue.enqueue(
                session,
                job_id=job_id or new_id("job"),
                account_id=account_id,
                kind=kind.name,
                payload=kind.dump(payload),
                credits=credits,
                max_attempts=self._max_attempts,
            )
            await self._billing.hold(
                account_id,
                credits,
                reference=kind.hold_reference(job),
                surface=kind.surface,
                units=units,
                session=session,
            )
        for listener in self._on_submit:
            listener()
        return job

    async def get(self, account_id: str, kind: JobKind[Any], job_id: str) -> Job:
        """The account's job of ``kind``; 404 for anyone else's, or another kind's."""
        job = await self._queue.owned(account_id, kind.name, job_id)
        if job is None:
            raise NotFound(f"{kind.noun} {job_id} does not exist")
        return job

    async def page(
        self, account_id: str, kind: JobKind[Any], status: str | None, limit: int, offset: int
    ) -> JobPage:
        """The account's jobs of ``kind``, newest first, optionally of one (queue) status."""
        return await self._queue.page(account_id, kind.name, status, limit, offset)

    async def cancel(self, account_id: str, kind: JobKind[Any], job_id: str) -> Job:
        """Cancel a queued job and release its credits; 409 once it has started or ended."""
        job = await self.get(account_id, kind, job_id)
        async with self._db.transaction() as session:
            if not await self._queue.cancel(job_id, account_id, session):
                raise Conflict(f"{kind.noun} {job_id} is {job.status}; only queued jobs can be canceled")
            await self.settle(job, CANCELED, None, None, session)
        await self.cleanup(job)
        return await self.get(account_id, kind, job_id)

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Run one attempt of ``job`` (the worker's call)."""
        return await self._kinds[job.kind].run(job, progress)

    async def settle(
        self, job: Job, status: str, result: dict[str, Any] | None, error: str | None, session: AsyncSession
    ) -> None:
        """In the transaction that makes ``job`` terminal: the kind's rows, the credits captured
        (succeeded) or released (anything else), the webhook event queued."""
        kind = self._kinds[job.kind]
        stands = await kind.settled(job, status, error, session)
        charged = status == SUCCEEDED and stands
        reference = kind.hold_reference(job)
        if charged:
            await self._billing.capture(reference, session=session)
        else:
            await self._billing.release(reference, session=session)
        if kind.event_prefix is None:
            return
        link = kind.result_url(result) if result else None
        event = {
            "type": f"{kind.event_prefix}.{kind.wire(status)}",
            "jobId": job.id,
            "status": kind.wire(status),
            "creditsUsed": job.credits if charged else 0,
            "error": error,
            "resultUrl": link[0] if link else None,
        }
        await self._webhooks.enqueue(job.account_id, f"{job.id}:{status}", event, session=session)

    async def cleanup(self, job: Job) -> None:
        """The kind's file work after the job's end was committed; a failure is logged, not raised
        (the job's outcome stands, and :meth:`sweep_inputs` removes leftovers)."""
        try:
            await self._kinds[job.kind].cleanup(job)
        except OSError:
            logger.warning("job %s: clean-up failed; retention removes what is left", job.id, exc_info=True)

    @property
    def result_areas(self) -> list[BlobArea]:
        """Where the registered kinds keep their results (for retention)."""
        return [kind.results for kind in self._kinds.values() if kind.results is not None]

    async def sweep_inputs(self, blobs: BlobStore, pool: WorkerPool, unused_since: datetime) -> int:
        """Delete kept inputs not written since ``unused_since`` whose job has ended — what a
        failed clean-up left behind (a queued job's inputs stay, however long it waits)."""
        areas = [kind.inputs for kind in self._kinds.values() if kind.inputs is not None]

        def old_inputs() -> list[str]:
            return [
                blob.key
                for area in areas
                for blob in blobs.list(area.area)
                if area.holds(blob.key) and blob.modified < unused_since
            ]

        keys = await pool.submit(old_inputs) if areas else []
        still_open = await self._queue.still_open({BlobArea.job_id(key) for key in keys})
        ended = [key for key in keys if BlobArea.job_id(key) not in still_open]

        def delete() -> None:
            for key in ended:
                blobs.delete(key)

        await pool.submit(delete)
        return len(ended)

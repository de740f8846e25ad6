"""TTS jobs: accepted with credits held in the same transaction, synthesized by a worker into a
deterministic blob (a rerun overwrites it), settled exactly once when the job ends."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.engines.base import EngineError
from openfish.errors import Conflict, NotFound, OpenfishError
from openfish.jobs.queue import SUCCEEDED, JobPage, JobQueue
from openfish.jobs.worker import JobFailed
from openfish.paths import SignedLinks
from openfish.services.billing import BillingService
from openfish.services.ids import new_id
from openfish.services.speech import TtsRequest
from openfish.services.synthesis import JOB_AREA, SynthesisService
from openfish.services.webhook_delivery import WebhookService
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Job

KIND = "tts"


def hold_reference(job_id: str) -> str:
    """Ledger reference of a job's credits."""
    return f"job:{job_id}"


def output_name(job: Job, sample_rate: int) -> str:
    """The job's audio file: one name per job, so a second attempt overwrites the first."""
    return f"{job.id}_{sample_rate}.{job.payload['format']}"


class TtsJobService:
    """Submits, reads, cancels and runs TTS jobs."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        billing: BillingService,
        queue: JobQueue,
        synthesis: SynthesisService,
        blobs: BlobStore,
        pool: WorkerPool,
        webhooks: WebhookService,
        links: SignedLinks,
    ) -> None:
        self._links = links
        self._db = db
        self._settings = settings
        self._billing = billing
        self._queue = queue
        self._synthesis = synthesis
        self._blobs = blobs
        self._pool = pool
        self._webhooks = webhooks

    async def submit(self, account_id: str, request: TtsRequest) -> Job:
        """Check the request fully, then queue it and hold its credits in one transaction."""
        plan = await self._synthesis.plan(account_id, request)  # every refusal happens here
        job_id = new_id("job")
        async with self._db.transaction() as session:
            await self._billing.hold(
                account_id,
                plan.credits,
                reference=hold_reference(job_id),
                surface=KIND,
                units=plan.characters,
                session=session,
            )
            job = self._queue.new_job(
                job_id=job_id,
                account_id=account_id,
                kind=KIND,
                payload=asdict(request),
                credits=plan.credits,
                max_attempts=self._settings.jobs.max_attempts,
            )
            session.add(job)
        return job

    async def get(self, account_id: str, job_id: str) -> Job:
        """The account's job; 404 for anyone else's (or for another kind of job)."""
        job = await self._queue.owned(account_id, KIND, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist")
        return job

    async def page(self, account_id: str, status: str | None, limit: int, offset: int) -> JobPage:
        """The account's jobs of this kind, newest first, optionally of one job status."""
        return await self._queue.page(account_id, KIND, status, limit, offset)

    async def cancel(self, account_id: str, job_id: str) -> Job:
        """Cancel a queued job and release its credits; 409 once it has started or ended."""
        job = await self.get(account_id, job_id)
        async with self._db.transaction() as session:
            if not await self._queue.cancel(job_id, account_id, session):
                raise Conflict(f"job {job_id} is {job.status}; only queued jobs can be canceled")
            job.status = "canceled"
            await self.settle(job, "canceled", None, None, session)
        return await self.get(account_id, job_id)

    async def run(self, job: Job) -> dict[str, Any]:
        """The worker's handler: synthesize the whole audio into the job's own blob."""
        request = TtsRequest(**job.payload)
        try:
            plan = await self._synthesis.plan(job.account_id, request)
            audio = await self._synthesis.render_audio(plan)
        except (EngineError, OpenfishError) as exc:
            # Refusals of a request stored before a rule changed, engines gone, no audio made.
            raise JobFailed(getattr(exc, "message", str(exc))) from exc
        name = output_name(job, plan.engine.sample_rate)
        await self._pool.submit(lambda: self._blobs.put(f"{JOB_AREA}/{name}", audio))
        return {"audio": name, "format": plan.format, "characters": plan.characters, "bytes": len(audio)}

    def audio_url(self, name: str) -> tuple[str, int]:
        """An absolute signed URL of a job's audio and when it expires."""
        return self._links.stored_audio(name, self._settings.tts.stored_url_ttl_seconds)

    async def settle(
        self, job: Job, status: str, result: dict[str, Any] | None, error: str | None, session: AsyncSession
    ) -> None:
        """In the transaction that ends the job: capture or release its credits, queue its webhook."""
        if status == SUCCEEDED:
            await self._billing.capture(hold_reference(job.id), session=session)
        else:
            await self._billing.release(hold_reference(job.id), session=session)
        event = {
            "type": f"tts.job.{status}",
            "jobId": job.id,
            "status": status,
            "creditsUsed": job.credits if status == SUCCEEDED else 0,
            "error": error,
            "resultUrl": self.audio_url(result["audio"])[0] if result else None,
        }
        await self._webhooks.enqueue(job.account_id, f"{job.id}:{status}", event, session=session)

"""TTS jobs: the whole request checked and priced at submit, synthesized by a worker into a
deterministic blob (a rerun overwrites it); holding, settling and webhooks are the job framework's."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.engines.base import EngineError
from openfish.errors import OpenfishError
from openfish.jobs.kinds import BlobArea, JobFailed, JobKind, Progress
from openfish.jobs.queue import SUCCEEDED
from openfish.jobs.service import JobService
from openfish.paths import SignedLinks
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.planner import TtsRequest
from openfish.services.tts.synthesis import JOB_AREA, SynthesisService
from openfish.store.blobs import BlobStore
from openfish.store.models import Job


def output_name(job: Job, sample_rate: int) -> str:
    """The job's audio file: one name per job, so a second attempt overwrites the first."""
    return f"{job.id}_{sample_rate}.{job.payload['format']}"


class TtsJobs(JobKind[TtsRequest]):
    """Async text to speech: the same request as sync TTS, its audio kept behind a signed URL."""

    name = "tts"
    payload_type = TtsRequest
    surface = "tts"
    event_prefix = "tts.job"
    results = BlobArea(JOB_AREA)

    def __init__(
        self,
        jobs: JobService,
        settings: Settings,
        synthesis: SynthesisService,
        blobs: BlobStore,
        pool: WorkerPool,
        links: SignedLinks,
    ) -> None:
        self._jobs = jobs
        self._settings = settings
        self._synthesis = synthesis
        self._blobs = blobs
        self._pool = pool
        self._links = links

    async def submit(self, account_id: str, request: TtsRequest) -> Job:
        """Check and price the request fully (every refusal happens here), then queue it."""
        plan = await self._synthesis.plan(account_id, request)
        return await self._jobs.submit(self, account_id, request, credits=plan.credits, units=plan.characters)

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Synthesize the whole audio into the job's own blob."""
        request = self.payload(job)
        try:
            plan = await self._synthesis.plan(job.account_id, request)
            audio = await self._synthesis.render_audio(plan)
        except (EngineError, OpenfishError) as exc:
            # Refusals of a request stored before a rule changed, engines gone, no audio made.
            raise JobFailed(getattr(exc, "message", str(exc))) from exc
        name = output_name(job, plan.sample_rate)
        await self._pool.submit(lambda: self._blobs.put(f"{JOB_AREA}/{name}", audio))
        return {"audio": name, "format": plan.format, "characters": plan.characters, "bytes": len(audio)}

    async def settled(self, job: Job, status: str, error: str | None, session: AsyncSession) -> bool:
        """A job that succeeded is a task of the voice it named, counted with its capture."""
        if status == SUCCEEDED:
            await self._synthesis.count_task(job.account_id, self.payload(job).voice_id, session)
        return True

    def result_url(self, result: dict[str, Any]) -> tuple[str, int]:
        """The signed URL of a job's audio and when it expires."""
        return self._links.stored_audio(result["audio"], self._settings.tts.stored_url_ttl_seconds)

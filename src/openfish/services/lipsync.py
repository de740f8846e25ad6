"""Lip-sync jobs: media checked and kept at submit, credits held with the job, rendered by a worker
into one MP4 per job (a rerun overwrites it), settled exactly once.

Everything that can be judged without rendering is judged at submit (4xx, nothing queued, nothing
charged): the media must be readable, the video a video within the size and length limits, the
audio decodable, within its limit and with speech in it. A video in which no frame shows a face is
only found out while rendering: the job fails with that message and its credits are released.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.audio.decode import AudioTooLong, DecodedAudio, UndecodableAudio, decode_audio
from openfish.audio.resample import resample
from openfish.config import Settings
from openfish.engines.base import EngineError, LipSyncEngine, LipSyncInputError, VadEngine
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable, InvalidRequest, NotFound, PayloadTooLarge, Unprocessable
from openfish.jobs.queue import SUCCEEDED, JobPage, JobQueue
from openfish.jobs.worker import JobFailed
from openfish.paths import SignedLinks
from openfish.services.billing import BillingService
from openfish.services.ids import new_id
from openfish.services.media_inputs import MediaInputs
from openfish.services.tts_jobs import hold_reference
from openfish.services.webhook_delivery import WebhookService
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Job
from openfish.store.scratch import scratch_copy
from openfish.video.probe import UnusableVideo, VideoInfo, probe_video

KIND = "lipsync"
AREA = "lipsync"
#: Less speech than this (by the VAD) counts as "no speech".
MIN_SPEECH_SECONDS = 0.3


def input_key(job_id: str, part: str) -> str:
    """Blob key of a job's kept input (``video`` or ``audio``)."""
    return f"{AREA}/{job_id}_{part}.bin"


def result_name(job_id: str) -> str:
    """File name of a job's output video (served at ``/media/lip-sync/results/<name>``)."""
    return f"{job_id}.mp4"


class LipSyncService:
    """Submits, reads and runs lip-sync jobs."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        billing: BillingService,
        queue: JobQueue,
        engines: EngineRegistry,
        media: MediaInputs,
        blobs: BlobStore,
        pool: WorkerPool,
        webhooks: WebhookService,
        links: SignedLinks,
    ) -> None:
        self._db = db
        self._settings = settings
        self._scratch = settings.scratch_dir
        self._billing = billing
        self._queue = queue
        self._engines = engines
        self._media = media
        self._blobs = blobs
        self._pool = pool
        self._webhooks = webhooks
        self._links = links
        # Renders take seconds to minutes: they get their own threads, so TTS and realtime work
        # in the shared pool never waits behind them.
        self._renders = WorkerPool(settings.lipsync.workers, name="openfish-lipsync")

    def start(self) -> None:
        """Start the render threads (with the app)."""
        self._renders.start()

    def stop(self) -> None:
        """Stop the render threads."""
        self._renders.stop()

    def engine(self) -> LipSyncEngine:
        """The configured engine, or 503 when this server has none."""
        engine = self._engines.lipsync(self._settings.lipsync.engine)
        if engine is None:
            raise EngineUnavailable("lip sync is not available on this server", retry_after=3600)
        return engine

    async def submit(self, account_id: str, video_url: str, audio_url: str) -> Job:
        """Fetch and check both media, keep them, then queue the job with its credits held."""
        limits = self._settings.lipsync
        self.engine()
        video = await self._media.read(
            account_id, video_url, label="videoUrl", max_bytes=limits.max_video_bytes
        )
        audio = await self._media.read(
            account_id, audio_url, label="audioUrl", max_bytes=limits.max_audio_bytes
        )
        decoded = await self._pool.submit(lambda: self._check_audio(audio))
        job_id = new_id("job")
        video_key, audio_key = input_key(job_id, "video"), input_key(job_id, "audio")
        queued = False
        try:
            # Both kept before the transaction: its write lock is not held across file I/O.
            await self._pool.submit(lambda: self._blobs.put(video_key, video))
            await self._pool.submit(lambda: self._blobs.put(audio_key, audio))
            info = await self._pool.submit(lambda: self._check_video(video_key))
            seconds = math.ceil(decoded.duration_seconds)
            credits = seconds * limits.credits_per_second
            async with self._db.transaction() as session:
                await self._billing.hold(
                    account_id,
                    credits,
                    reference=hold_reference(job_id),
                    surface=KIND,
                    units=seconds,
                    session=session,
                )
                job = self._queue.new_job(
                    job_id=job_id,
                    account_id=account_id,
                    kind=KIND,
                    payload={
                        "seconds": round(decoded.duration_seconds, 3),
                        "width": info.width,
                        "height": info.height,
                        "fps": round(info.fps, 3),
                    },
                    credits=credits,
                    max_attempts=self._settings.jobs.max_attempts,
                )
                session.add(job)
            queued = True
        finally:
            if not queued:
                await self._pool.submit(lambda: self._delete_inputs(job_id))
        return job

    def _check_audio(self, data: bytes) -> DecodedAudio:
        try:
            decoded = decode_audio(data, max_seconds=self._settings.lipsync.max_seconds)
        except AudioTooLong as exc:
            raise PayloadTooLarge(f"audioUrl: {exc}") from exc
        except UndecodableAudio as exc:
            raise InvalidRequest(f"audioUrl: {exc}") from exc
        if _speech_seconds(self._engines.vad, decoded) < MIN_SPEECH_SECONDS:
            raise Unprocessable("audioUrl: there is no speech in the audio")
        return decoded

    def _check_video(self, key: str) -> VideoInfo:
        limits = self._settings.lipsync
        try:
            with scratch_copy(self._blobs, key, self._scratch) as path:
                return probe_video(path, max_pixels=limits.max_pixels, max_seconds=limits.max_video_seconds)
        except FileNotFoundError as exc:
            raise NotFound("videoUrl: the video was not stored") from exc
        except UnusableVideo as exc:
            raise InvalidRequest(f"videoUrl: {exc}") from exc

    async def get(self, account_id: str, job_id: str) -> Job:
        """The account's job; 404 for anyone else's (or for another kind of job)."""
        job = await self._queue.owned(account_id, KIND, job_id)
        if job is None:
            raise NotFound(f"lip-sync job {job_id} does not exist")
        return job

    async def page(self, account_id: str, status: str | None, limit: int, offset: int) -> JobPage:
        """The account's jobs of this kind, newest first, optionally of one job status."""
        return await self._queue.page(account_id, KIND, status, limit, offset)

    async def run(self, job: Job) -> dict[str, Any]:
        """The worker's handler: render the job's MP4 into its own blob, reporting progress."""
        engine = self.engine()
        worker = job.lease_owner or ""
        latest = [0]  # written by the render thread, read here (one int: atomic under the GIL)

        def progress(fraction: float) -> None:
            latest[0] = int(fraction * 100)

        async def report() -> None:
            # At most once a second; 100 is written with the job's terminal state.
            sent = 0
            while True:
                await asyncio.sleep(1.0)
                if min(latest[0], 99) != sent:
                    sent = min(latest[0], 99)
                    await self._queue.report_progress(job, worker, sent)

        reporter = asyncio.create_task(report())
        try:
            result = await self._renders.submit(lambda: self._render(engine, job, progress))
        except (LipSyncInputError, UndecodableAudio) as exc:
            raise JobFailed(str(exc)) from exc
        except (EngineError, FileNotFoundError) as exc:
            raise JobFailed(f"lip sync failed: {exc}") from exc
        finally:
            reporter.cancel()
        return result

    def _render(self, engine: LipSyncEngine, job: Job, progress: Callable[[float], None]) -> dict[str, Any]:
        audio = decode_audio(self._blobs.get(input_key(job.id, "audio")))
        with (
            scratch_copy(self._blobs, input_key(job.id, "video"), self._scratch) as video,
            tempfile.TemporaryDirectory(dir=self._scratch) as scratch,
        ):
            output = Path(scratch) / "out.mp4"
            report = engine.sync(video, audio.samples, audio.sample_rate, output, progress=progress)
            self._blobs.put_file(f"{AREA}/{result_name(job.id)}", output)
        return {
            "video": result_name(job.id),
            "seconds": round(report.duration, 3),
            "frames": report.frames,
            "framesWithFace": report.frames_with_face,
        }

    def result_url(self, name: str) -> str:
        """An absolute signed URL of a job's video."""
        return self._links.lipsync_result(name, self._settings.lipsync.result_url_ttl_seconds)[0]

    async def settle(
        self, job: Job, status: str, result: dict[str, Any] | None, error: str | None, session: AsyncSession
    ) -> None:
        """In the transaction that ends the job: credits, the webhook event, and the kept inputs
        (no longer needed once the job is over)."""
        if status == SUCCEEDED:
            await self._billing.capture(hold_reference(job.id), session=session)
        else:
            await self._billing.release(hold_reference(job.id), session=session)
        event = {
            "type": f"lipsync.job.{'completed' if status == SUCCEEDED else status}",
            "jobId": job.id,
            "status": "completed" if status == SUCCEEDED else status,
            "creditsUsed": job.credits if status == SUCCEEDED else 0,
            "error": error,
            "resultUrl": self.result_url(result["video"]) if result else None,
        }
        await self._webhooks.enqueue(job.account_id, f"{job.id}:{status}", event, session=session)
        await self._pool.submit(lambda: self._delete_inputs(job.id))

    def _delete_inputs(self, job_id: str) -> None:
        for part in ("video", "audio"):
            self._blobs.delete(input_key(job_id, part))


def _speech_seconds(vad: VadEngine | None, audio: DecodedAudio) -> float:
    """Seconds the VAD hears as speech (all of it when there is no VAD to ask)."""
    if vad is None:
        return audio.duration_seconds
    samples = resample(audio.samples, audio.sample_rate, 16_000)
    whole = samples.size - samples.size % vad.window
    if whole == 0:
        return 0.0
    probabilities = np.asarray(vad.stream().probabilities(samples[:whole]))
    return float(np.count_nonzero(probabilities >= 0.5)) * vad.window / 16_000

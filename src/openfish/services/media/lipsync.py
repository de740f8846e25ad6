"""Lip-sync jobs: media checked and kept at submit, rendered by a worker into one MP4 per job (a
rerun overwrites it); holding, settling and webhooks are the job framework's, and the kept inputs
are deleted once the job's end is committed.

Everything that can be judged without rendering is judged at submit (4xx, nothing queued, nothing
charged): the media must be readable, the video a video within the size and length limits, the
audio decodable, within its limit and with speech in it. A video in which no frame shows a face is
only found out while rendering: the job fails with that message and its credits are released.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from openfish.audio.decode import AudioTooLong, DecodedAudio, UndecodableAudio, decode_audio
from openfish.audio.resample import resample
from openfish.config import Settings
from openfish.engines.base import EngineError, LipSyncEngine, LipSyncInputError, VadEngine
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable, InvalidRequest, NotFound, PayloadTooLarge, Unprocessable
from openfish.jobs.kinds import BlobArea, JobFailed, JobKind, Progress
from openfish.jobs.service import JobService
from openfish.paths import SignedLinks
from openfish.services.media.inputs import MediaInputs
from openfish.services.runtime.ids import new_id
from openfish.services.runtime.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.models import Job
from openfish.store.scratch import scratch_copy
from openfish.video.probe import UnusableVideo, VideoInfo, probe_video

AREA = "lipsync"
#: Less speech than this (by the VAD) counts as "no speech".
MIN_SPEECH_SECONDS = 0.3


def input_key(job_id: str, part: str) -> str:
    """Blob key of a job's kept input (``video`` or ``audio``)."""
    return f"{AREA}/{job_id}_{part}.bin"


def result_name(job_id: str) -> str:
    """File name of a job's output video (served at ``/media/lip-sync/results/<name>``)."""
    return f"{job_id}.mp4"


@dataclass(frozen=True)
class LipSyncPayload:
    """What submit measured (the inputs themselves are kept as blobs under the job's id)."""

    seconds: float
    width: int
    height: int
    fps: float


class LipSyncJobs(JobKind[LipSyncPayload]):
    """Lip sync: a video's mouth redrawn to follow an audio track."""

    name = "lipsync"
    payload_type = LipSyncPayload
    surface = "lipsync"
    noun = "lip-sync job"
    event_prefix = "lipsync.job"
    #: The contract's lip-sync statuses (it has no "canceled": lip-sync jobs cannot be canceled).
    wire_status: ClassVar[Mapping[str, str]] = {
        "queued": "pending",
        "succeeded": "completed",
        "canceled": "failed",
    }
    results = BlobArea(AREA, ".mp4")
    inputs = BlobArea(AREA, ".bin")

    def __init__(
        self,
        jobs: JobService,
        settings: Settings,
        engines: EngineRegistry,
        media: MediaInputs,
        blobs: BlobStore,
        pool: WorkerPool,
        links: SignedLinks,
    ) -> None:
        self._jobs = jobs
        self._settings = settings
        self._scratch = settings.scratch_dir
        self._engines = engines
        self._media = media
        self._blobs = blobs
        self._pool = pool
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
            payload = LipSyncPayload(
                seconds=round(decoded.duration_seconds, 3),
                width=info.width,
                height=info.height,
                fps=round(info.fps, 3),
            )
            job = await self._jobs.submit(
                self,
                account_id,
                payload,
                credits=seconds * limits.credits_per_second,
                units=seconds,
                job_id=job_id,
            )
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

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Render the job's MP4 into its own blob, reporting progress from the render thread."""
        engine = self.engine()
        try:
            return await self._renders.submit(lambda: self._render(engine, job, progress))
        except (LipSyncInputError, UndecodableAudio) as exc:
            raise JobFailed(str(exc)) from exc
        except (EngineError, FileNotFoundError) as exc:
            raise JobFailed(f"lip sync failed: {exc}") from exc

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

    def result_url(self, result: dict[str, Any]) -> tuple[str, int]:
        """The signed URL of a job's video and when it expires."""
        return self._links.lipsync_result(result["video"], self._settings.lipsync.result_url_ttl_seconds)

    async def cleanup(self, job: Job) -> None:
        """The kept inputs are no longer needed once the job is over."""
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

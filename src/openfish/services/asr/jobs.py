"""Transcription jobs: the audio checked, measured, priced and kept at submit, transcribed by a
worker into a transcript (JSON) and its captions (SRT, VTT) under the job's id (a rerun overwrites
them); holding, settling and webhooks are the job framework's, and the kept audio is deleted once
the job's end is committed.

Everything the sync call refuses is refused at submit (4xx, nothing queued, nothing charged): the
model and language, the size, audio that cannot be decoded, audio over the length limit. The
price, ``ceil(seconds) × asr.credits_per_second``, is held with the job and captured once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from openfish.config import Settings
from openfish.engines.base import Segment, Transcript
from openfish.errors import OpenfishError
from openfish.jobs.kinds import BlobArea, JobFailed, JobKind, Progress
from openfish.jobs.service import JobService
from openfish.paths import SignedLinks
from openfish.services.accounts.accounts import AccountService
from openfish.services.accounts.billing import BillingService
from openfish.services.asr.captions import captions
from openfish.services.asr.transcription import TranscriptionService, transcript_document
from openfish.services.runtime.ids import new_id
from openfish.services.runtime.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.models import Job

#: Where a job's transcript and captions are kept (``transcripts/<job id>.json|srt|vtt``).
AREA = "transcripts"
#: Where a job's audio is kept while the job is open (``transcript-inputs/<job id>.bin``).
INPUT_AREA = "transcript-inputs"
#: The files a succeeded job has, by the name its result gives each.
RESULT_FILES = ("json", "srt", "vtt")


def input_key(job_id: str) -> str:
    """Blob key of a job's kept audio."""
    return f"{INPUT_AREA}/{job_id}.bin"


def result_key(name: str) -> str:
    """Blob key of a job's result file ``name`` (``<job id>.json``, ``.srt`` or ``.vtt``)."""
    return f"{AREA}/{name}"


@dataclass(frozen=True)
class TranscriptionPayload:
    """What was asked and what submit measured (the audio itself is kept as a blob)."""

    model: str
    language: str | None
    words: bool
    seconds: float


@dataclass(frozen=True)
class CaptionLinks:
    """Signed links to a succeeded job's captions and when they expire (Unix seconds)."""

    srt: str
    vtt: str
    expires: int


class _Stopped(Exception):
    """Raised on the pool's thread at the next segment once the attempt was given up (the worker is
    stopping or lost its lease), so the decode ends there; it never leaves this module."""


class TranscriptionJobs(JobKind[TranscriptionPayload]):
    """Async speech to text: the sync call's inputs, the transcript and captions kept as blobs."""

    name = "transcription"
    payload_type = TranscriptionPayload
    surface = "asr"
    noun = "transcription job"
    event_prefix = "transcription.job"
    results = BlobArea(AREA)
    inputs = BlobArea(INPUT_AREA, ".bin")

    def __init__(
        self,
        jobs: JobService,
        settings: Settings,
        transcription: TranscriptionService,
        accounts: AccountService,
        billing: BillingService,
        blobs: BlobStore,
        pool: WorkerPool,
        links: SignedLinks,
    ) -> None:
        self._jobs = jobs
        self._settings = settings
        self._transcription = transcription
        self._accounts = accounts
        self._billing = billing
        self._blobs = blobs
        self._pool = pool
        self._links = links

    async def audio_from_url(self, account_id: str, url: str, *, model: str | None, language: str) -> bytes:
        """The bytes behind ``audioUrl``, after the model and language were checked (as the sync
        call does: nothing is fetched for a request that would be refused anyway)."""
        self._transcription.check(model, language)
        return await self._transcription.audio_from_url(account_id, url)

    async def submit(
        self, account_id: str, data: bytes, *, language: str, words: bool, model: str | None
    ) -> Job:
        """Check, measure and price the audio, keep it, then queue the job with its price held."""
        measured = await self._transcription.measure(data, language=language, words=words, model=model)
        payload = TranscriptionPayload(
            model=measured.model,
            language=None if language == "auto" else language,
            words=words,
            seconds=measured.duration_seconds,
        )
        job_id = new_id("job")
        key = input_key(job_id)
        queued = False
        try:
            # Kept before the transaction: its write lock is not held across file I/O.
            await self._pool.submit(lambda: self._blobs.put(key, data))
            job = await self._jobs.submit(
                self, account_id, payload, credits=measured.credits, units=measured.seconds, job_id=job_id
            )
            queued = True
        finally:
            if not queued:
                await self._pool.submit(lambda: self._blobs.delete(key))
        return job

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Transcribe the kept audio, reporting progress as the audio's seconds are decoded, and
        keep the transcript and its captions under the job's id."""
        request = self.payload(job)
        try:
            data = await self._pool.submit(lambda: self._blobs.get(input_key(job.id)))
        except FileNotFoundError as exc:
            raise JobFailed("the audio of this job is no longer kept") from exc
        given_up = threading.Event()
        decoded = [0.0]  # seconds of audio decoded so far: the furthest segment end seen

        def advance(segment: Segment) -> None:  # on the pool's thread, after each segment
            if given_up.is_set():
                raise _Stopped
            decoded[0] = max(decoded[0], segment.end)
            progress(decoded[0] / request.seconds if request.seconds > 0 else 0.0)

        try:
            transcript = await self._transcription.transcript_of(
                data, language=request.language, words=request.words, model=request.model, on_segment=advance
            )
        except OpenfishError as exc:
            # The model is gone, the limits changed, the engine refused: a rerun would not help.
            raise JobFailed(exc.message) from exc
        finally:
            given_up.set()  # a cancelled attempt's decode stops at its next segment
        del data
        # As the sync answer says it: the quota left once this transcription's price was held.
        quota = self._billing.quota_remaining(await self._accounts.get_account(job.account_id))
        document = transcript_document(transcript, job.credits, quota)
        await self._pool.submit(lambda: self._keep(job.id, transcript, document))
        return {
            **{fmt: f"{job.id}.{fmt}" for fmt in RESULT_FILES},
            "language": transcript.language,
            "segments": len(transcript.segments),
        }

    def _keep(self, job_id: str, transcript: Transcript, document: dict[str, Any]) -> None:
        self._blobs.put(result_key(f"{job_id}.json"), json.dumps(document, ensure_ascii=False).encode())
        for fmt in ("srt", "vtt"):
            self._blobs.put(result_key(f"{job_id}.{fmt}"), captions(transcript.segments, fmt).encode())

    async def transcript(self, result: dict[str, Any]) -> bytes | None:
        """A succeeded job's transcript (the JSON document), or None once retention removed it."""
        try:
            return await self._pool.submit(lambda: self._blobs.get(result_key(result["json"])))
        except FileNotFoundError:
            return None

    def result_url(self, result: dict[str, Any]) -> tuple[str, int]:
        """The signed URL of a job's transcript (JSON) and when it expires: the webhook's link."""
        return self._links.transcription_result(result["json"], self._settings.asr.result_url_ttl_seconds)

    def caption_links(self, result: dict[str, Any]) -> CaptionLinks:
        """Freshly signed links to a succeeded job's captions."""
        ttl = self._settings.asr.result_url_ttl_seconds
        srt, expires = self._links.transcription_result(result["srt"], ttl)
        vtt, _ = self._links.transcription_result(result["vtt"], ttl)
        return CaptionLinks(srt=srt, vtt=vtt, expires=expires)

    async def cleanup(self, job: Job) -> None:
        """The kept audio is no longer needed once the job is over."""
        await self._pool.submit(lambda: self._blobs.delete(input_key(job.id)))

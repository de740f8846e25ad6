"""The composition root: every service of one process, built once from the settings
(:func:`build_services`), brought up and down by :meth:`Services.start` / :meth:`Services.stop` — the
same for ``openfish serve`` (through the app's lifespan) and ``openfish worker``.

Nothing is built at import time, and nothing outside this module builds services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from openfish.config import Settings
from openfish.engines.registry import EngineRegistry, build_engines
from openfish.jobs.backends import build_job_queue
from openfish.jobs.queue import JobQueue
from openfish.jobs.service import JobService
from openfish.jobs.worker import JobWorker
from openfish.paths import SignedLinks
from openfish.services.accounts.accounts import AccountService
from openfish.services.accounts.billing import BillingService
from openfish.services.accounts.idempotency import IdempotencyService
from openfish.services.accounts.limits import RequestLimiter
from openfish.services.accounts.sessions import SessionSlots, release_abandoned
from openfish.services.accounts.usage import UsageService
from openfish.services.asr.jobs import TranscriptionJobs
from openfish.services.asr.sessions import LiveListeningFactory
from openfish.services.asr.transcription import TranscriptionService
from openfish.services.media.fetch import MediaFetcher
from openfish.services.media.files import FileService
from openfish.services.media.inputs import MediaInputs
from openfish.services.media.lipsync import LipSyncJobs
from openfish.services.runtime.readiness import Readiness
from openfish.services.runtime.retention import sweep
from openfish.services.runtime.signing import UrlSigner
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.jobs import TtsJobs
from openfish.services.tts.planner import SpeechPlanner
from openfish.services.tts.synthesis import SynthesisService
from openfish.services.voices.analysis import BaseProfiles, VoiceAnalysis
from openfish.services.voices.catalog import VoiceService
from openfish.services.voices.conversion import VoiceConversions
from openfish.services.webhooks.delivery import WebhookService
from openfish.store.blob_backends import build_blob_store
from openfish.store.blobs import BlobStore
from openfish.store.counters import Counters, MemoryCounters
from openfish.store.database import UNAVAILABLE, Database
from openfish.store.models import utcnow
from openfish.store.sql_counters import SqlCounters

MAINTENANCE_SECONDS = 600.0
#: The longest an HTTP request holds a concurrency slot (a long streamed synthesis, a large upload).
REQUEST_SLOT_SECONDS = 600.0
logger = logging.getLogger("openfish.maintenance")


@dataclass
class Services:
    """The service objects one app is built with (``app.state.services``)."""

    settings: Settings
    db: Database
    accounts: AccountService
    billing: BillingService
    usage: UsageService
    limiter: RequestLimiter
    readiness: Readiness
    engines: EngineRegistry
    synthesis: SynthesisService
    pool: WorkerPool
    blobs: BlobStore
    voices: VoiceService
    conversions: VoiceConversions
    queue: JobQueue
    jobs: JobService
    tts_jobs: TtsJobs
    voice_analysis: VoiceAnalysis
    idempotency: IdempotencyService
    webhooks: WebhookService
    job_worker: JobWorker
    files: FileService
    media_fetcher: MediaFetcher
    transcription: TranscriptionService
    transcription_jobs: TranscriptionJobs
    realtime_slots: SessionSlots
    live_listening: LiveListeningFactory
    lipsync: LipSyncJobs

    signer: UrlSigner
    _stop: asyncio.Event | None = field(default=None, init=False, repr=False)
    _background: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def start(self, *, worker: bool) -> None:
        """Bring the graph up: migrate, load the signing key, start the pool, load models, and start
        the background work this process does.

        ``worker=False`` is an API node (``openfish serve``): models load per their preload
        settings, and background work (every job kind — TTS, lip sync, voice analysis,
        transcription — webhook deliveries, maintenance) runs only with ``jobs.embedded_worker``.
        ``worker=True`` is ``openfish worker``: every model loads and every kind of background
        work runs.
        """
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.db.migrate()
        await self.queue.open()
        await self.signer.load()
        self.pool.start()
        if worker:
            await self.pool.submit(self.engines.load_all)
        else:
            if settings.tts.preload and settings.surfaces.tts:
                await self.pool.submit(self.engines.load_speech)
            if settings.asr.preload and settings.surfaces.asr:
                await self.pool.submit(self.engines.load_transcribers)
        if worker or settings.jobs.embedded_worker:
            # A new event per start: a start may run on another event loop than the last one did
            # (tests run an app's lifespan more than once), and an event belongs to one loop.
            self._stop = asyncio.Event()
            self._background = asyncio.create_task(_background_work(self, self._stop))

    async def stop(self) -> None:
        """Stop the background work (running jobs go back to the queue) and release everything."""
        if self._stop is not None:
            self._stop.set()
        if self._background is not None:
            await self._background
            self._background = None
        self.pool.stop()
        await self.queue.close()
        await self.db.dispose()


def build_services(settings: Settings, engines: EngineRegistry | None = None) -> Services:
    """The service graph for one server (or one CLI invocation).

    ``engines`` lets several apps in one process (tests, benchmarks) share loaded models.
    """
    db = Database(
        settings.database_url,
        echo=settings.database.echo,
        sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
    )
    billing = BillingService(db, settings)
    engines = engines or build_engines(settings)
    # Rate, concurrency and session counts: in this process, or on the database so that every node
    # on it enforces an account's limits together. On the database a slot expires (a crashed node
    # never gives its slots back): request slots after the longest request, session slots after the
    # longest realtime session.
    request_counters = _counters(db, settings, REQUEST_SLOT_SECONDS)
    session_counters = _counters(db, settings, settings.realtime.max_session_seconds)
    pool = WorkerPool(settings.tts.workers or 2 * (os.cpu_count() or 1))
    planner = SpeechPlanner(engines, settings)
    blobs = build_blob_store(settings.storage, settings.data_dir)
    queue = build_job_queue(db, settings)
    webhooks = WebhookService(db, settings)
    jobs = JobService(db, queue, billing, webhooks, max_attempts=settings.jobs.max_attempts)
    base_profiles = BaseProfiles(engines, blobs)
    analysis = VoiceAnalysis(db, engines, blobs, pool, base_profiles)
    voices = VoiceService(db, settings, billing, engines, blobs, pool, jobs, analysis)
    conversions = VoiceConversions(voices, engines, blobs, pool, base_profiles, settings.voices)
    synthesis = SynthesisService(
        planner, billing, settings, pool, blobs, conversions.conversion_for, voices.count_task
    )
    # One key for every node on this database (or the configured one); the per-node file of earlier
    # versions only seeds the database's key, so URLs signed before the move stay valid.
    signer = UrlSigner(db, key=settings.signing_key_bytes, legacy_file=settings.data_dir / "secret.key")
    links = SignedLinks(settings.base_url, signer)
    tts_jobs = TtsJobs(jobs, settings, synthesis, blobs, pool, links)
    files = FileService(blobs, pool)
    media_fetcher = MediaFetcher(settings)
    media = MediaInputs(files, signer, blobs, pool, settings.own_base_urls, media_fetcher)
    transcription = TranscriptionService(settings, billing, engines, pool, media)
    accounts = AccountService(db, settings, billing)
    transcription_jobs = TranscriptionJobs(
        jobs, settings, transcription, accounts, billing, blobs, pool, links
    )
    lipsync = LipSyncJobs(jobs, settings, engines, media, blobs, pool, links)
    for kind in (tts_jobs, lipsync, analysis, transcription_jobs):
        jobs.register(kind)
    job_worker = JobWorker(
        db,
        queue,
        jobs,
        concurrency=settings.jobs.worker_concurrency,
        lease_seconds=settings.jobs.lease_seconds,
        poll_seconds=queue.poll_seconds,
    )
    jobs.on_submit(job_worker.wake)  # the embedded worker looks at once (others find it by polling)
    services = Services(
        settings=settings,
        db=db,
        accounts=accounts,
        billing=billing,
        usage=UsageService(db),
        limiter=RequestLimiter(request_counters),
        readiness=Readiness(),
        engines=engines,
        synthesis=synthesis,
        pool=pool,
        blobs=blobs,
        voices=voices,
        conversions=conversions,
        signer=signer,
        queue=queue,
        jobs=jobs,
        tts_jobs=tts_jobs,
        voice_analysis=analysis,
        idempotency=IdempotencyService(db, settings),
        webhooks=webhooks,
        files=files,
        transcription=transcription,
        transcription_jobs=transcription_jobs,
        lipsync=lipsync,
        media_fetcher=media_fetcher,
        realtime_slots=SessionSlots(session_counters),
        live_listening=LiveListeningFactory(settings, engines, pool, billing, transcription),
        job_worker=job_worker,
    )
    services.readiness.add("database", db.ping)
    if settings.tts.preload:
        # With lazy loading a model comes in on first use, so an unloaded engine is not "unready".
        services.readiness.add("engines", lambda: _engines_loaded(engines))
    return services


def _counters(db: Database, settings: Settings, hold_seconds: float) -> Counters:
    if settings.shared_counters:
        return SqlCounters(db, hold_seconds=hold_seconds)
    return MemoryCounters()


async def _background_work(services: Services, stop: asyncio.Event) -> None:
    """A process's background loops until ``stop``: the job worker (every kind), webhook
    deliveries and maintenance (expired idempotency keys, holds of dead sessions, retention)."""
    loops = [services.job_worker.run(stop), services.webhooks.run(stop), _maintenance(services, stop)]
    services.lipsync.start()
    try:
        await asyncio.gather(*loops)
    finally:
        services.lipsync.stop()
        await services.webhooks.aclose()
        await services.media_fetcher.aclose()


async def _maintenance(services: Services, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await _maintain(services)
        except UNAVAILABLE as exc:
            # Every step is idempotent: the next pass does what this one could not.
            logger.warning("maintenance skipped: database unavailable (%s)", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MAINTENANCE_SECONDS)


async def _maintain(services: Services) -> None:
    """One maintenance pass: expired idempotency keys, holds of dead sessions, retention."""
    await services.idempotency.purge_expired()
    await release_abandoned(services.billing, services.settings)
    now = utcnow()
    sweep_now = partial(sweep, services.blobs, services.settings, now, services.jobs.result_areas)
    swept = await services.pool.submit(sweep_now)
    if swept.stored_audio or swept.job_results or swept.scratch:
        logger.info("retention: deleted %s", swept)
    inputs_since = now - timedelta(seconds=services.settings.retention.scratch_seconds)
    if leftovers := await services.jobs.sweep_inputs(services.blobs, services.pool, inputs_since):
        logger.info("retention: deleted %d inputs of ended jobs", leftovers)
    if pruned := await services.queue.prune(inputs_since):
        logger.info("retention: deleted the dispatch records of %d ended jobs", pruned)


async def _engines_loaded(engines: EngineRegistry) -> None:
    waiting = [engine.name for engine in engines.speech_engines() if not engine.loaded]
    if waiting:
        raise EngineNotLoaded(", ".join(waiting))


class EngineNotLoaded(RuntimeError):
    """Readiness: an engine's model is not in memory yet."""

"""The application factory. Nothing is built at import time; ``create_app`` builds everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from openfish import __version__
from openfish.api import (
    audio,
    health,
    legacy,
    legacy_voices,
    profile,
    realtime_asr,
    realtime_tts,
    transcriptions,
    tts,
    usage,
)
from openfish.api import files as files_api
from openfish.api import lipsync as lipsync_api
from openfish.api import tts_jobs as tts_jobs_api
from openfish.api import voices as voices_api
from openfish.api.deps import Services
from openfish.api.handlers import install_error_handlers
from openfish.api.schema import install_openapi
from openfish.api.schema_rules import enforced_rules
from openfish.config import Settings
from openfish.engines.registry import EngineRegistry, build_engines
from openfish.jobs.sql_queue import SqlJobQueue
from openfish.jobs.worker import JobWorker
from openfish.middleware import RequestContextMiddleware
from openfish.services.accounts import AccountService
from openfish.services.billing import BillingService
from openfish.services.files import FileService
from openfish.services.idempotency import IdempotencyService
from openfish.services.limits import RequestLimiter
from openfish.services.lipsync import LipSyncService
from openfish.services.media_fetch import MediaFetcher
from openfish.services.media_inputs import MediaInputs
from openfish.services.readiness import Readiness
from openfish.services.realtime import SessionSlots, release_abandoned
from openfish.services.realtime_asr import LiveListeningFactory
from openfish.services.retention import sweep
from openfish.services.signing import UrlSigner
from openfish.services.speech import SpeechPlanner
from openfish.services.synthesis import SynthesisService
from openfish.services.transcription import TranscriptionService
from openfish.services.tts_jobs import TtsJobService
from openfish.services.usage import UsageService
from openfish.services.voice_processing import VoiceProcessor
from openfish.services.voices import VoiceService
from openfish.services.webhook_delivery import WebhookService
from openfish.services.workers import WorkerPool
from openfish.store.counters import MemoryCounters
from openfish.store.database import Database
from openfish.store.local_blobs import LocalBlobStore
from openfish.store.models import utcnow

MAINTENANCE_SECONDS = 600.0
logger = logging.getLogger("openfish.maintenance")


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
    # Rate, concurrency and session counts; a scale-out deployment swaps in a shared implementation.
    counters = MemoryCounters()
    pool = WorkerPool(settings.tts.workers or 2 * (os.cpu_count() or 1))
    planner = SpeechPlanner(engines, settings)
    blobs = LocalBlobStore(settings.data_dir / "blobs")
    voices = VoiceService(db, settings, billing, engines, blobs, pool)
    processor = VoiceProcessor(db, settings, billing, engines, blobs, pool, voices)
    synthesis = SynthesisService(planner, billing, settings, pool, blobs, processor.conversion_for)
    # One key for every node on this database (or the configured one); the per-node file of earlier
    # versions only seeds the database's key, so URLs signed before the move stay valid.
    signer = UrlSigner(db, key=settings.signing_key_bytes, legacy_file=settings.data_dir / "secret.key")
    queue = SqlJobQueue(db)
    webhooks = WebhookService(db, settings)
    tts_jobs = TtsJobService(db, settings, billing, queue, synthesis, blobs, pool, webhooks, signer)
    files = FileService(blobs, pool)
    media_fetcher = MediaFetcher(settings)
    media = MediaInputs(files, signer, blobs, pool, settings.own_base_urls, media_fetcher)
    transcription = TranscriptionService(settings, billing, engines, pool, media)
    lipsync = LipSyncService(db, settings, billing, queue, engines, media, blobs, pool, webhooks, signer)
    services = Services(
        settings=settings,
        db=db,
        accounts=AccountService(db, settings, billing),
        billing=billing,
        usage=UsageService(db),
        limiter=RequestLimiter(counters),
        readiness=Readiness(),
        engines=engines,
        synthesis=synthesis,
        pool=pool,
        blobs=blobs,
        voices=voices,
        voice_processor=processor,
        signer=signer,
        jobs=queue,
        tts_jobs=tts_jobs,
        idempotency=IdempotencyService(db, settings),
        webhooks=webhooks,
        files=files,
        transcription=transcription,
        lipsync=lipsync,
        media_fetcher=media_fetcher,
        realtime_slots=SessionSlots(counters),
        live_listening=LiveListeningFactory(settings, engines, pool, billing, transcription),
        job_worker=JobWorker(
            db,
            queue,
            {"tts": tts_jobs.run, "lipsync": lipsync.run},
            {"tts": tts_jobs.settle, "lipsync": lipsync.settle},
            concurrency=settings.jobs.worker_concurrency,
            lease_seconds=settings.jobs.lease_seconds,
        ),
    )
    services.readiness.add("database", db.ping)
    if settings.tts.preload:
        # With lazy loading a model comes in on first use, so an unloaded engine is not "unready".
        services.readiness.add("engines", lambda: _engines_loaded(engines))
    return services


async def run_background(services: Services, stop: asyncio.Event, *, worker: bool) -> None:
    """The server's (or ``openfish worker``'s) background loops until ``stop``: the job worker,
    webhook deliveries, and expiry of idempotency keys."""
    loops = [services.webhooks.run(stop), _maintenance(services, stop)]
    if worker:
        loops.append(services.job_worker.run(stop))
    services.lipsync.start()
    try:
        await asyncio.gather(*loops)
    finally:
        services.lipsync.stop()
        await services.webhooks.aclose()
        await services.media_fetcher.aclose()


async def _maintenance(services: Services, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await services.idempotency.purge_expired()
        await release_abandoned(services.billing, services.settings)
        swept = await services.pool.submit(lambda: sweep(services.blobs, services.settings, utcnow()))
        if swept.stored_audio or swept.job_results or swept.scratch:
            logger.info("retention: deleted %s", swept)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MAINTENANCE_SECONDS)


async def _engines_loaded(engines: EngineRegistry) -> None:
    waiting = [engine.name for engine in engines.speech_engines() if not engine.loaded]
    if waiting:
        raise EngineNotLoaded(", ".join(waiting))


class EngineNotLoaded(RuntimeError):
    """Readiness: an engine's model is not in memory yet."""


def _surface_routers(settings: Settings, engines: EngineRegistry) -> list[APIRouter]:
    """Routers of the surfaces switched on in ``settings.surfaces`` whose engines are here."""
    available = {
        "profile": [profile.router],
        "usage": [usage.router],
        "tts": [tts.router, tts_jobs_api.router, legacy.router, audio.router],
        "voices": [voices_api.router, legacy_voices.router],
        "asr": [transcriptions.router],
        "files": [files_api.router],
    }
    if engines.lipsync(settings.lipsync.engine) is not None:
        available["lipsync"] = [lipsync_api.router, lipsync_api.legacy_router]
    if settings.realtime.tts:
        available["tts"].append(realtime_tts.router)
    if settings.realtime.asr:
        available["asr"].append(realtime_asr.router)
    enabled = settings.surfaces.model_dump()
    return [router for name, routers in available.items() if enabled.get(name, False) for router in routers]


def create_app(settings: Settings, engines: EngineRegistry | None = None) -> FastAPI:
    """A FastAPI app serving the surfaces enabled in ``settings``."""
    services = build_services(settings, engines)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await services.db.migrate()
        await services.signer.load()
        services.pool.start()
        if settings.tts.preload and settings.surfaces.tts:
            await services.pool.submit(services.engines.load_speech)
        if settings.asr.preload and settings.surfaces.asr:
            await services.pool.submit(services.engines.load_transcribers)
        if settings.surfaces.voices:
            await services.voice_processor.resume()
        stop = asyncio.Event()
        worker = settings.jobs.embedded_worker and (settings.surfaces.tts or settings.surfaces.lipsync)
        background = asyncio.create_task(run_background(services, stop, worker=worker))
        try:
            yield
        finally:
            stop.set()
            await background
            await services.voice_processor.stop()
            services.pool.stop()
            await services.db.dispose()

    app = FastAPI(
        title="openfish",
        summary="Self-hosted FishSpeech Open API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    routers = _surface_routers(settings, services.engines)
    install_error_handlers(app)
    install_openapi(
        app,
        extra_models=[
            tts.TtsBody,
            legacy.LegacyTtsBody,
            transcriptions.TranscriptionBody,
            lipsync_api.LipSyncBody,
            profile.ProfileUpdate,
            legacy_voices.ListModelsBody,
            legacy_voices.DeleteModelBody,
        ],
        websockets={
            path: doc
            for module in (realtime_tts, realtime_asr)
            if module.router in routers
            for path, doc in module.SOCKETS.items()
        },
        rules=enforced_rules(settings, services.engines),
    )
    upload_limit = settings.voices.max_upload_bytes
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        body_limits={
            "/api/open/v1/voices": upload_limit,
            "/api/open/create-model": upload_limit,
            "/api/open/v1/speech/transcriptions": settings.asr.max_bytes,
            "/api/open/v1/files": settings.asr.max_bytes,
        },
        trust_client_id=settings.http.trust_client_request_id,
    )
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    return app

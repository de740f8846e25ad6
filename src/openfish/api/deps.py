"""Typed dependencies: everything a route needs comes from ``app.state`` through these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.engines.registry import EngineRegistry
from openfish.errors import Unauthorized
from openfish.jobs.queue import JobQueue
from openfish.jobs.worker import JobWorker
from openfish.services.accounts import AccountService, Principal
from openfish.services.billing import BillingService
from openfish.services.files import FileService
from openfish.services.idempotency import IdempotencyService
from openfish.services.limits import RequestLimiter
from openfish.services.lipsync import LipSyncService
from openfish.services.media_fetch import MediaFetcher
from openfish.services.readiness import Readiness
from openfish.services.realtime import SessionSlots
from openfish.services.realtime_asr import LiveListeningFactory
from openfish.services.signing import UrlSigner
from openfish.services.synthesis import SynthesisService
from openfish.services.transcription import TranscriptionService
from openfish.services.tts_jobs import TtsJobService
from openfish.services.usage import UsageService
from openfish.services.voice_processing import VoiceProcessor
from openfish.services.voices import VoiceService
from openfish.services.webhook_delivery import WebhookService
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.database import Database


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
    voice_processor: VoiceProcessor
    jobs: JobQueue
    tts_jobs: TtsJobService
    idempotency: IdempotencyService
    webhooks: WebhookService
    job_worker: JobWorker
    files: FileService
    media_fetcher: MediaFetcher
    transcription: TranscriptionService
    realtime_slots: SessionSlots
    live_listening: LiveListeningFactory
    lipsync: LipSyncService

    def job_worker_wake(self) -> None:
        """Tell the embedded worker a job was queued (a separate worker finds it by polling)."""
        self.job_worker.wake()

    signer: UrlSigner


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


async def _session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]

# Declares the scheme in the OpenAPI document; the checks themselves are ours (below).
_bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth", description="An openfish API token.")


async def _current_account(
    request: Request,
    services: ServicesDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Principal]:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("An `Authorization: Bearer <token>` header is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be `Bearer <token>`.")
    principal = await services.accounts.authenticate(token.strip())
    tier = services.settings.tiers.get(principal.tier) or next(iter(services.settings.tiers.values()))
    await services.limiter.acquire(principal.account_id, tier)
    try:
        # The slot stays taken until the response (streamed or not) has been sent.
        yield principal
    finally:
        # Shielded: a request cancelled by a client that left must still give its slot back.
        with anyio.CancelScope(shield=True):
            await services.limiter.release(principal.account_id)


CurrentAccount = Annotated[Principal, Depends(_current_account)]

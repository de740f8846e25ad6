"""Typed dependencies: everything a route needs comes from ``app.state`` through these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.container import Services
from openfish.errors import Unauthorized
from openfish.jobs.service import JobService
from openfish.middleware import note_account
from openfish.services.accounts.accounts import AccountService, Principal
from openfish.services.accounts.billing import BillingService
from openfish.services.accounts.idempotency import IdempotencyService
from openfish.services.accounts.usage import UsageService
from openfish.services.asr.jobs import TranscriptionJobs
from openfish.services.asr.transcription import TranscriptionService
from openfish.services.media.files import FileService
from openfish.services.media.lipsync import LipSyncJobs
from openfish.services.runtime.readiness import Readiness
from openfish.services.runtime.signing import UrlSigner
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.jobs import TtsJobs
from openfish.services.tts.synthesis import SynthesisService
from openfish.services.voices.catalog import VoiceService
from openfish.services.voices.conversion import VoiceConversions
from openfish.services.webhooks.delivery import WebhookService
from openfish.store.blobs import BlobStore

T = TypeVar("T")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


def _part(pick: Callable[[Services], T]) -> Callable[[Services], Awaitable[T]]:
    # Async, so FastAPI calls it on the event loop rather than sending a sync function to its
    # thread pool on every request.
    async def dependency(services: ServicesDep) -> T:
        return pick(services)

    return dependency


# One alias per service a route uses, each the container's own object (``Services.<field>``): a
# route declares only what it touches, so its signature says what it depends on.
SettingsDep = Annotated[Settings, Depends(_part(lambda s: s.settings))]
AccountsDep = Annotated[AccountService, Depends(_part(lambda s: s.accounts))]
BillingDep = Annotated[BillingService, Depends(_part(lambda s: s.billing))]
UsageDep = Annotated[UsageService, Depends(_part(lambda s: s.usage))]
IdempotencyDep = Annotated[IdempotencyService, Depends(_part(lambda s: s.idempotency))]
WebhooksDep = Annotated[WebhookService, Depends(_part(lambda s: s.webhooks))]
ReadinessDep = Annotated[Readiness, Depends(_part(lambda s: s.readiness))]
SynthesisDep = Annotated[SynthesisService, Depends(_part(lambda s: s.synthesis))]
VoicesDep = Annotated[VoiceService, Depends(_part(lambda s: s.voices))]
ConversionsDep = Annotated[VoiceConversions, Depends(_part(lambda s: s.conversions))]
JobsDep = Annotated[JobService, Depends(_part(lambda s: s.jobs))]
TtsJobsDep = Annotated[TtsJobs, Depends(_part(lambda s: s.tts_jobs))]
LipSyncDep = Annotated[LipSyncJobs, Depends(_part(lambda s: s.lipsync))]
TranscriptionJobsDep = Annotated[TranscriptionJobs, Depends(_part(lambda s: s.transcription_jobs))]
TranscriptionDep = Annotated[TranscriptionService, Depends(_part(lambda s: s.transcription))]
FilesDep = Annotated[FileService, Depends(_part(lambda s: s.files))]
SignerDep = Annotated[UrlSigner, Depends(_part(lambda s: s.signer))]
BlobsDep = Annotated[BlobStore, Depends(_part(lambda s: s.blobs))]
PoolDep = Annotated[WorkerPool, Depends(_part(lambda s: s.pool))]


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
    note_account(request.scope, principal.account_id)
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

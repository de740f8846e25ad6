"""Voices: built-in engine voices and the ones accounts make from reference audio.

A made voice is created ``processing`` with its reference audio stored, its price held and its
analysis queued, in one transaction; the analysis is a job (``services/voices/analysis.py``) that
ends ``ready`` (price captured) or ``failed`` (price released). Private voices exist only for
their owner: every other account gets 404, exactly as for a voice that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.engines.registry import EngineRegistry
from openfish.errors import Conflict, InvalidRequest, NotFound
from openfish.jobs.service import JobService
from openfish.services.accounts.billing import BillingService
from openfish.services.runtime.ids import new_id
from openfish.services.runtime.workers import WorkerPool
from openfish.services.voices.analysis import (
    VOICE_AREA,
    VoiceAnalysis,
    VoiceAnalysisPayload,
    profile_key,
    reference_key,
    voice_hold_reference,
)
from openfish.services.voices.labels import Cover
from openfish.services.voices.queries import VoiceScope, list_page
from openfish.services.voices.tasks import count_task, forget, usage_of
from openfish.services.voices.uploads import Reference
from openfish.services.voices.views import VoicePage, VoiceView, builtin_view, custom_view
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Voice

VISIBILITIES = ("private", "unlist", "public")


def cover_key(voice_id: str) -> str:
    """Blob key of a voice's cover image."""
    return f"{VOICE_AREA}/{voice_id}_cover.img"


class VoiceService:
    """Creates, finds, lists and deletes voices, always as seen by one account."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        billing: BillingService,
        engines: EngineRegistry,
        blobs: BlobStore,
        pool: WorkerPool,
        jobs: JobService,
        analysis: VoiceAnalysis,
    ) -> None:
        self._jobs = jobs
        self._analysis = analysis
        self._pool = pool
        self._db = db
        self._settings = settings
        self._billing = billing
        self._engines = engines
        self._blobs = blobs

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str,
        visibility: str,
        language: str,
        references: list[Reference],
        transcripts: list[str],
        tags: Sequence[str] = (),
        cover: Cover | None = None,
    ) -> Voice:
        """Store the clips (and cover), then the voice (``processing``), its held price and its
        analysis job in one transaction; 402 (nothing kept) if unaffordable. ``tags`` and ``cover``
        come checked (``services/voices/labels.py``)."""
        rules = self._settings.voices
        if visibility not in VISIBILITIES:
            raise InvalidRequest(f"visibility: must be one of {', '.join(VISIBILITIES)}")
        if not name.strip():
            raise InvalidRequest("name: must not be empty")
        base_voice = rules.base_voices.get(language.split("-")[0].lower())
        if base_voice is None:
            known = ", ".join(sorted(rules.base_voices))
            raise InvalidRequest(f"language: voices can be made for {known} on this server")
        if self._engines.find_voice(base_voice) is None or self._engines.converter(rules.converter) is None:
            raise InvalidRequest(
                "voices cannot be made on this server: its base voice or converter is missing"
            )
        voice_id = new_id("voice")
        try:
            for index, reference in enumerate(references):
                await self._pool.submit(partial(self._store_reference, voice_id, index, reference))
            if cover is not None:
                await self._pool.submit(partial(self._blobs.put, cover_key(voice_id), cover.data))
            voice = Voice(
                id=voice_id,
                account_id=account_id,
                name=name.strip(),
                description=description.strip(),
                visibility=visibility,
                language=language,
                status="processing",
                failure_reason=None,
                base_voice=base_voice,
                converter=rules.converter,
                reference_count=len(references),
                speech_seconds=round(sum(r.speech_seconds for r in references), 2),
                transcripts=transcripts,
                tags=list(tags),
                cover_type=cover.content_type if cover else None,
                credits=rules.creation_credits,
            )
            await self._jobs.submit(
                self._analysis,
                account_id,
                VoiceAnalysisPayload(voice_id=voice_id),
                credits=rules.creation_credits,
                rows=[voice],
            )
        except BaseException:
            await self._pool.submit(lambda: self._remove_blobs(voice_id, len(references)))
            raise
        return voice

    async def get(self, account_id: str, voice_id: str) -> VoiceView:
        """A voice the account may see, built-in or made, with its usage; 404 otherwise."""
        found = self._engines.find_voice(voice_id)
        voice = None if found is not None else await self._visible(account_id, voice_id)
        async with self._db.session() as session:
            usage = (await usage_of(session, [voice_id])).get(voice_id)
        if voice is not None:
            return custom_view(voice, account_id, usage)
        assert found is not None
        return builtin_view(found[1], usage)

    async def _visible(self, account_id: str, voice_id: str) -> Voice:
        """A made voice the account may see (its own, or not private); 404 otherwise."""
        async with self._db.session() as session:
            voice = await session.get(Voice, voice_id)
        if voice is None or (voice.account_id != account_id and voice.visibility == "private"):
            raise NotFound(f"voice {voice_id} does not exist")
        return voice

    async def update(
        self,
        account_id: str,
        voice_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        visibility: str | None = None,
        tags: Sequence[str] | None = None,
        cover: Cover | None = None,
    ) -> VoiceView:
        """Change what is given of the account's own voice (its audio stays); 404 for any other.
        ``tags`` and ``cover`` come checked (``services/voices/labels.py``)."""
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidRequest(f"visibility: must be one of {', '.join(VISIBILITIES)}")
        if name is not None and not name.strip():
            raise InvalidRequest("name: must not be empty")
        if cover is not None:
            await self.get_own(account_id, voice_id)  # no blob for a voice the caller may not change
            await self._pool.submit(partial(self._blobs.put, cover_key(voice_id), cover.data))
        async with self._db.transaction() as session:
            voice = await session.get(Voice, voice_id)
            if voice is None or voice.account_id != account_id:
                raise NotFound(f"voice {voice_id} does not exist")
            if name is not None:
                voice.name = name.strip()
            if description is not None:
                voice.description = description.strip()
            if visibility is not None:
                voice.visibility = visibility
            if tags is not None:
                voice.tags = list(tags)
            if cover is not None:
                voice.cover_type = cover.content_type
        return await self.get(account_id, voice_id)

    async def get_own(self, account_id: str, voice_id: str) -> Voice:
        """One of the account's own made voices; 404 for anything else (built-in, others')."""
        async with self._db.session() as session:
            voice = await session.get(Voice, voice_id)
        if voice is None or voice.account_id != account_id:
            raise NotFound(f"voice {voice_id} does not exist")
        return voice

    async def cover(self, account_id: str, voice_id: str) -> Cover:
        """The cover image of a voice the account may see; 404 when it has none."""
        if self._engines.find_voice(voice_id) is not None:
            raise NotFound(f"voice {voice_id} has no cover image")
        content_type = (await self._visible(account_id, voice_id)).cover_type
        if content_type is None:
            raise NotFound(f"voice {voice_id} has no cover image")
        try:
            data = await self._pool.submit(lambda: self._blobs.get(cover_key(voice_id)))
        except FileNotFoundError:
            raise NotFound(f"voice {voice_id} has no cover image") from None
        return Cover(data, content_type)

    async def for_synthesis(self, account_id: str, voice_id: str) -> Voice | None:
        """The made voice to speak with (None for a built-in id); 404 if hidden, 409 if not ready."""
        if self._engines.find_voice(voice_id) is not None:
            return None
        voice = await self._visible(account_id, voice_id)
        if voice.status != "ready":
            reason = f": {voice.failure_reason}" if voice.failure_reason else ""
            raise Conflict(f"voice {voice_id} is {voice.status}{reason}; it cannot speak yet")
        return voice

    async def delete(self, account_id: str, voice_id: str) -> None:
        """Delete the account's own voice with its clips and profile; 404 for anything else."""
        async with self._db.transaction() as session:
            voice = await session.get(Voice, voice_id)
            if voice is None or voice.account_id != account_id:
                raise NotFound(f"voice {voice_id} does not exist")
            count = voice.reference_count
            await session.delete(voice)
            await forget(session, voice_id)
            # A voice deleted while processing must not keep its price held (a no-op once settled).
            await self._billing.release(voice_hold_reference(voice_id), session=session)
        await self._pool.submit(lambda: self._remove_blobs(voice_id, count))

    async def page(self, account_id: str, scope: VoiceScope, *, limit: int, offset: int) -> VoicePage:
        """Made voices the account may list (its own, others' public ready ones) and built-in voices,
        as ``scope`` narrows and sorts them (``services/voices/queries.py``)."""
        async with self._db.session() as session:
            return await list_page(
                session, self._engines.speech_engines(), account_id, scope, limit=limit, offset=offset
            )

    async def count_task(self, account_id: str, voice_id: str, session: AsyncSession | None = None) -> None:
        """Count a charged synthesis request that named ``voice_id`` (``services/voices/tasks.py``)
        in ``session``'s transaction, or in one of its own; only voices that exist count (not
        inline references, not a voice deleted meanwhile)."""
        if session is None:
            async with self._db.transaction() as own:
                await self.count_task(account_id, voice_id, own)
            return
        if self._engines.find_voice(voice_id) is None:
            made = await session.scalar(select(Voice.id).where(Voice.id == voice_id))
            if made is None:
                return
        await count_task(session, account_id, voice_id)

    def _store_reference(self, voice_id: str, index: int, reference: Reference) -> None:
        self._blobs.put(reference_key(voice_id, index), reference.wav())

    def _remove_blobs(self, voice_id: str, count: int) -> None:
        for index in range(count):
            self._blobs.delete(reference_key(voice_id, index))
        self._blobs.delete(profile_key(voice_id))
        self._blobs.delete(cover_key(voice_id))

"""Voices: built-in engine voices and the ones accounts make from reference audio.

A made voice is created ``processing`` with its reference audio stored, its price held and its
analysis queued, in one transaction; the analysis is a job (``services/voices/analysis.py``) that
ends ``ready`` (price captured) or ``failed`` (price released). Private voices exist only for
their owner: every other account gets 404, exactly as for a voice that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import ColumnElement, Select, Text, and_, cast, func, or_, select

from openfish.config import Settings
from openfish.engines.base import VoiceInfo
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
from openfish.services.voices.uploads import Reference
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Voice

CUSTOM_PROVIDER = "custom"
VISIBILITIES = ("private", "unlist", "public")


@dataclass(frozen=True)
class VoiceView:
    """A voice as the API lists it: built-in or made, with whose it is."""

    id: str
    name: str
    provider: str
    language: str
    description: str = ""
    visibility: str = "public"
    status: str = "ready"
    failure_reason: str | None = None
    is_personal: bool = False
    record: Voice | None = None


@dataclass(frozen=True)
class VoiceFilters:
    """Narrowing a listing: a piece of the name, every one of ``tags``, any one of ``languages``
    (``en`` matches ``en-US``). Built-in voices have no tags, so a tag filter leaves them out."""

    name: str | None = None
    tags: Sequence[str] = ()
    languages: Sequence[str] = ()


def cover_key(voice_id: str) -> str:
    """Blob key of a voice's cover image."""
    return f"{VOICE_AREA}/{voice_id}_cover.img"


@dataclass(frozen=True)
class VoicePage:
    """One page of a voice listing."""

    total: int
    items: list[VoiceView]


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
        """A voice the account may see, built-in or made; 404 otherwise."""
        found = self._engines.find_voice(voice_id)
        if found is not None:
            return _builtin_view(found[1])
        async with self._db.session() as session:
            voice = await session.get(Voice, voice_id)
        if voice is None or (voice.account_id != account_id and voice.visibility == "private"):
            raise NotFound(f"voice {voice_id} does not exist")
        return _custom_view(voice, account_id)

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
        view = await self.get(account_id, voice_id)
        if view.record is None or view.record.cover_type is None:
            raise NotFound(f"voice {voice_id} has no cover image")
        content_type = view.record.cover_type
        try:
            data = await self._pool.submit(lambda: self._blobs.get(cover_key(voice_id)))
        except FileNotFoundError:
            raise NotFound(f"voice {voice_id} has no cover image") from None
        return Cover(data, content_type)

    async def for_synthesis(self, account_id: str, voice_id: str) -> Voice | None:
        """The made voice to speak with (None for a built-in id); 404 if hidden, 409 if not ready."""
        if self._engines.find_voice(voice_id) is not None:
            return None
        view = await self.get(account_id, voice_id)
        assert view.record is not None
        if view.status != "ready":
            reason = f": {view.failure_reason}" if view.failure_reason else ""
            raise Conflict(f"voice {voice_id} is {view.status}{reason}; it cannot speak yet")
        return view.record

    async def delete(self, account_id: str, voice_id: str) -> None:
        """Delete the account's own voice with its clips and profile; 404 for anything else."""
        async with self._db.transaction() as session:
            voice = await session.get(Voice, voice_id)
            if voice is None or voice.account_id != account_id:
                raise NotFound(f"voice {voice_id} does not exist")
            count = voice.reference_count
            await session.delete(voice)
            # A voice deleted while processing must not keep its price held (a no-op once settled).
            await self._billing.release(voice_hold_reference(voice_id), session=session)
        await self._pool.submit(lambda: self._remove_blobs(voice_id, count))

    async def page(
        self,
        account_id: str,
        *,
        provider: str | None,
        search: str | None,
        limit: int,
        offset: int,
        personal_only: bool = False,
        others_only: bool = False,
        include_builtin: bool = True,
        filters: VoiceFilters | None = None,
    ) -> VoicePage:
        """Made voices the account may list (its own, others' public ones), then built-in voices.
        ``personal_only``: only the account's own made voices; ``others_only``: none of them (both:
        an empty page). Filtered before paging, so totals and pages count what is listed."""
        needle = (search or "").strip().lower()
        narrow = filters or VoiceFilters()
        customs = provider in (None, CUSTOM_PROVIDER)
        query = self._visible(account_id, needle, personal_only, others_only) if customs else None
        if query is not None:
            query = _narrowed(query, narrow)
        custom_total = 0
        if query is not None:
            async with self._db.session() as session:
                custom_total = int(
                    await session.scalar(select(func.count()).select_from(query.subquery())) or 0
                )
        builtins = [] if personal_only or not include_builtin else self._builtins(provider, needle, narrow)
        if personal_only and others_only:
            return VoicePage(total=0, items=[])
        items: list[VoiceView] = []
        if query is not None and offset < custom_total:
            async with self._db.session() as session:
                page = await session.scalars(
                    query.order_by(Voice.created_at.desc(), Voice.id).offset(offset).limit(limit)
                )
                items = [_custom_view(voice, account_id) for voice in page]
        start = max(0, offset - custom_total)
        items += builtins[start : start + limit - len(items)]
        return VoicePage(total=custom_total + len(builtins), items=items)

    def _visible(self, account_id: str, needle: str, personal_only: bool, others_only: bool) -> Select[Voice]:
        mine: ColumnElement[bool] = Voice.account_id == account_id
        shared = and_(Voice.visibility == "public", Voice.status == "ready")
        if personal_only:
            visible = mine
        elif others_only:
            visible = and_(Voice.account_id != account_id, shared)
        else:
            visible = or_(mine, shared)
        query = select(Voice).where(visible)
        if needle:
            pattern = f"%{needle.replace('%', '').replace('_', '')}%"
            query = query.where(
                or_(func.lower(Voice.name).like(pattern), func.lower(Voice.description).like(pattern))
            )
        return query

    def _builtins(self, provider: str | None, needle: str, narrow: VoiceFilters) -> list[VoiceView]:
        if narrow.tags:
            return []
        name = (narrow.name or "").strip().lower()
        languages = {language.lower() for language in narrow.languages}
        views = []
        for engine in self._engines.speech_engines():
            if provider not in (None, engine.name):
                continue
            for info in engine.voices():
                if needle and needle not in f"{info.id} {info.name} {info.language}".lower():
                    continue
                if name and name not in f"{info.id} {info.name}".lower():
                    continue
                if languages and not _speaks(info.language, languages):
                    continue
                views.append(_builtin_view(info))
        return views

    def _store_reference(self, voice_id: str, index: int, reference: Reference) -> None:
        self._blobs.put(reference_key(voice_id, index), reference.wav())

    def _remove_blobs(self, voice_id: str, count: int) -> None:
        for index in range(count):
            self._blobs.delete(reference_key(voice_id, index))
        self._blobs.delete(profile_key(voice_id))
        self._blobs.delete(cover_key(voice_id))


def _like(text: str) -> str:
    """``text`` escaped for LIKE with ``!`` as the escape character."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _narrowed(query: Select[Voice], narrow: VoiceFilters) -> Select[Voice]:
    """``query`` with the filters as portable SQL (LIKE on the name, the language and the tags'
    stored JSON text: checked tags hold no quotes or backslashes, so ``"tag"`` is one whole tag)."""
    name = (narrow.name or "").strip().lower()
    if name:
        query = query.where(func.lower(Voice.name).like(f"%{_like(name)}%", escape="!"))
    stored_tags = func.lower(cast(Voice.tags, Text))
    for tag in narrow.tags:
        query = query.where(stored_tags.like(f"%{_like(json.dumps(tag.lower()))}%", escape="!"))
    if narrow.languages:
        language = func.lower(Voice.language)
        query = query.where(
            or_(
                *(
                    or_(language == code.lower(), language.like(f"{_like(code.lower())}-%", escape="!"))
                    for code in narrow.languages
                )
            )
        )
    return query


def _speaks(language: str, codes: set[str]) -> bool:
    """Whether a voice of ``language`` (``en-us``, ``en_US``) speaks one of ``codes``."""
    spoken = language.lower().replace("_", "-")
    return any(spoken == code or spoken.startswith(f"{code}-") for code in codes)


def _builtin_view(info: VoiceInfo) -> VoiceView:
    return VoiceView(id=info.id, name=info.name, provider=info.engine, language=info.language)


def _custom_view(voice: Voice, account_id: str) -> VoiceView:
    return VoiceView(
        id=voice.id,
        name=voice.name,
        provider=CUSTOM_PROVIDER,
        language=voice.language,
        description=voice.description,
        visibility=voice.visibility,
        status=voice.status,
        failure_reason=voice.failure_reason,
        is_personal=voice.account_id == account_id,
        record=voice,
    )

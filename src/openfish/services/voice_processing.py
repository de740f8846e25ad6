"""Analysing made voices in the background, and the base voices' own profiles.

A voice is analysed once: its clips are read back, the converter turns them into a speaker profile
(stored as a blob) and the voice becomes ``ready`` and its price is captured — or ``failed`` with a
reason and its price released. Voices left ``processing`` by a stopped server are picked up again
at the next start, so none is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import anyio
from sqlalchemy import select, update

from openfish.audio.decode import UndecodableAudio, decode_audio
from openfish.config import Settings
from openfish.engines.base import EngineError, SynthesisOptions, VoiceConverter
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable
from openfish.services.billing import BillingService
from openfish.services.speech import Conversion
from openfish.services.voice_uploads import ANALYSIS_RATE
from openfish.services.voices import VOICE_AREA, VoiceService, hold_reference, profile_key, reference_key
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Voice

logger = logging.getLogger("openfish.voices")

#: Phonetically varied sentences a base voice speaks once so its own profile can be measured.
BASE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "A large rainbow appeared over the valley after the afternoon thunderstorm.",
    "Please remember to bring your umbrella, your ticket, and a warm jacket tomorrow.",
    "Zebras, giraffes and elephants gathered quietly around the muddy water hole.",
)


class VoiceProcessor:
    """Runs voice analyses as tasks on the event loop, the heavy part in the worker pool."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        billing: BillingService,
        engines: EngineRegistry,
        blobs: BlobStore,
        pool: WorkerPool,
        voices: VoiceService,
    ) -> None:
        self._voices = voices
        self._db = db
        self._settings = settings
        self._billing = billing
        self._engines = engines
        self._blobs = blobs
        self._pool = pool
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, voice_id: str) -> None:
        """Analyse ``voice_id`` in the background."""
        task = asyncio.create_task(self._process(voice_id), name=f"analyse {voice_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> int:
        """Schedule every voice still ``processing`` (after a restart); returns how many."""
        async with self._db.session() as session:
            pending = (await session.scalars(select(Voice.id).where(Voice.status == "processing"))).all()
        for voice_id in pending:
            self.schedule(voice_id)
        return len(pending)

    async def drain(self) -> None:
        """Wait for every analysis under way (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel analyses under way; their voices stay ``processing`` and resume next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def base_profile(self, base_voice: str, converter: VoiceConverter) -> bytes:
        """The profile of a built-in voice, measured once and kept (blocking: run in the pool)."""

        def measure() -> bytes:
            blob = f"{VOICE_AREA}/base-{base_voice}-{converter.name}.bin"
            if self._blobs.exists(blob):
                return self._blobs.get(blob)
            found = self._engines.find_voice(base_voice)
            if found is None:
                raise EngineError(f"base voice {base_voice} is not installed")
            engine, voice = found
            options = SynthesisOptions(voice=voice.id)
            clips = [chunk for text in BASE_SENTENCES for chunk in engine.synthesize(text, options)]
            profile = converter.analyse(clips, engine.sample_rate)
            self._blobs.put(blob, profile)
            return profile

        return self._engines.derived(("base-profile", base_voice, converter.name), measure)

    async def conversion_for(self, account_id: str, voice_id: str) -> tuple[str, Conversion] | None:
        """The base voice and conversion that speak a made voice; None for built-in voices.

        404 for a voice the account may not use, 409 for one that is not ready.
        """
        voice = await self._voices.for_synthesis(account_id, voice_id)
        if voice is None:
            return None
        converter = self._engines.converter(voice.converter)
        if converter is None:
            raise EngineUnavailable(f"the {voice.converter} converter is not installed", retry_after=60)
        target = await self._pool.submit(lambda: self._blobs.get(profile_key(voice.id)))
        source = await self._pool.submit(lambda: self.base_profile(voice.base_voice, converter))
        identity = f"{voice.id}:{hashlib.sha256(target).hexdigest()[:16]}"
        return voice.base_voice, Conversion(
            converter=converter, source=source, target=target, identity=identity
        )

    async def _process(self, voice_id: str) -> None:
        async with self._db.session() as session:
            voice = await session.get(Voice, voice_id)
        if voice is None or voice.status != "processing":
            return
        converter = self._engines.converter(voice.converter)
        try:
            if converter is None:
                raise EngineError(f"the {voice.converter} converter is not installed")
            await self._pool.submit(lambda: self._analyse(voice, converter))
            await self._pool.submit(lambda: self.base_profile(voice.base_voice, converter))
        except (EngineError, UndecodableAudio, ValueError, OSError) as exc:
            logger.warning("voice %s failed: %s", voice_id, exc)
            await self._finish(voice_id, "failed", f"analysis failed: {exc}")
            return
        await self._finish(voice_id, "ready", None)

    def _analyse(self, voice: Voice, converter: VoiceConverter) -> None:
        clips = []
        for index in range(voice.reference_count):
            decoded = decode_audio(self._blobs.get(reference_key(voice.id, index)))
            clips.append(decoded.samples)
        self._blobs.put(profile_key(voice.id), converter.analyse(clips, ANALYSIS_RATE))

    async def _finish(self, voice_id: str, status: str, reason: str | None) -> None:
        with anyio.CancelScope(shield=True):
            async with self._db.transaction() as session:
                result = await session.execute(
                    update(Voice)
                    .where(Voice.id == voice_id, Voice.status == "processing")
                    .values(status=status, failure_reason=reason)
                    .execution_options(synchronize_session=False)
                )
                settled = result.rowcount == 1  # type: ignore[attr-defined]
            if settled and status == "ready":
                await self._billing.capture(hold_reference(voice_id))
            else:
                # Failed, or deleted while it was being analysed: nobody pays.
                await self._billing.release(hold_reference(voice_id))

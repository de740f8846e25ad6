"""Speaking in a made voice: a base voice's audio turned toward the made voice's speaker profile
(both profiles are measured by :mod:`openfish.services.voices.analysis`)."""

from __future__ import annotations

import hashlib

from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.planner import Conversion
from openfish.services.voices.analysis import BaseProfiles, profile_key
from openfish.services.voices.catalog import VoiceService
from openfish.store.blobs import BlobStore


class VoiceConversions:
    """Finds the conversion that speaks a made voice."""

    def __init__(
        self,
        voices: VoiceService,
        engines: EngineRegistry,
        blobs: BlobStore,
        pool: WorkerPool,
        base_profiles: BaseProfiles,
    ) -> None:
        self._voices = voices
        self._engines = engines
        self._blobs = blobs
        self._pool = pool
        self._base_profiles = base_profiles

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
        source = await self._pool.submit(lambda: self._base_profiles.profile(voice.base_voice, converter))
        identity = f"{voice.id}:{hashlib.sha256(target).hexdigest()[:16]}"
        return voice.base_voice, Conversion(
            converter=converter, source=source, target=target, identity=identity
        )

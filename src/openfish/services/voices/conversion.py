"""Speaking in a made voice: a base voice's audio turned toward the made voice's speaker profile
(both profiles are measured by :mod:`openfish.services.voices.analysis`).

Inline references (zero-shot cloning for one request: the Fish Audio API's ``references``) are
voices too: their clips are checked like a voice's uploads and analysed at once, and the profile is
kept per account under the clips' content hash (``references/<account>_<hash>.bin``), so sending
the same reference again costs no analysis. It is swept like ``cache=true`` audio, a day after its
last use. The voice id handed to synthesis (``ref_<hash>``) speaks only for the account that sent
the clips: for any other it is a voice that does not exist.
"""

from __future__ import annotations

import hashlib

from openfish.config import VoiceSettings
from openfish.engines.base import VoiceConverter
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable, InvalidRequest, NotFound
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.planner import Conversion
from openfish.services.voices.analysis import BaseProfiles, profile_key
from openfish.services.voices.catalog import VoiceService
from openfish.services.voices.uploads import ANALYSIS_RATE, Upload, check_uploads
from openfish.store.blobs import BlobStore

#: Blob area of inline reference profiles, and the prefix of the voice ids that name them.
REFERENCE_AREA = "references"
INLINE_PREFIX = "ref_"


def inline_profile_key(account_id: str, voice_id: str) -> str:
    """Blob key of the profile of an account's inline reference ``ref_<hash>``."""
    return f"{REFERENCE_AREA}/{account_id}_{voice_id.removeprefix(INLINE_PREFIX)}.bin"


class VoiceConversions:
    """Finds the conversion that speaks a made voice."""

    def __init__(
        self,
        voices: VoiceService,
        engines: EngineRegistry,
        blobs: BlobStore,
        pool: WorkerPool,
        base_profiles: BaseProfiles,
        rules: VoiceSettings,
    ) -> None:
        self._voices = voices
        self._engines = engines
        self._blobs = blobs
        self._pool = pool
        self._base_profiles = base_profiles
        self._rules = rules

    async def inline_voice(self, account_id: str, clips: list[Upload], field: str = "references") -> str:
        """A voice id (``ref_<hash>``) that speaks like ``clips`` for this account: analysed now,
        or found from an earlier request with the same audio. 400/413/422 naming ``field`` for clips
        that are not usable speech (the rules of voice uploads)."""
        converter, _base = self._inline_parts(field)
        digest = hashlib.sha256()
        for clip in clips:
            digest.update(len(clip.data).to_bytes(8, "big") + clip.data)
        voice_id = f"{INLINE_PREFIX}{digest.hexdigest()[:32]}"
        key = inline_profile_key(account_id, voice_id)
        if not await self._pool.submit(lambda: self._touch(key)):
            references = await self._pool.submit(lambda: check_uploads(clips, self._rules, field))
            profile = await self._pool.submit(
                lambda: converter.analyse([reference.samples for reference in references], ANALYSIS_RATE)
            )
            await self._pool.submit(lambda: self._blobs.put(key, profile))
        return voice_id

    async def conversion_for(self, account_id: str, voice_id: str) -> tuple[str, Conversion] | None:
        """The base voice and conversion that speak a made voice (or an inline reference); None
        for built-in voices.

        404 for a voice the account may not use, 409 for one that is not ready.
        """
        if voice_id.startswith(INLINE_PREFIX):
            return await self._inline_conversion(account_id, voice_id)
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

    async def _inline_conversion(self, account_id: str, voice_id: str) -> tuple[str, Conversion]:
        converter, base_voice = self._inline_parts("voiceId")
        key = inline_profile_key(account_id, voice_id)
        try:
            target = await self._pool.submit(lambda: self._blobs.get(key))
        except FileNotFoundError:
            raise NotFound(f"voice {voice_id} does not exist") from None
        source = await self._pool.submit(lambda: self._base_profiles.profile(base_voice, converter))
        identity = f"{voice_id}:{hashlib.sha256(target).hexdigest()[:16]}"
        return base_voice, Conversion(converter=converter, source=source, target=target, identity=identity)

    def _inline_parts(self, field: str) -> tuple[VoiceConverter, str]:
        """The converter and base voice inline references speak with (the base voice of English,
        else the first configured); 400 when this server has none."""
        converter = self._engines.converter(self._rules.converter)
        base_voice = self._rules.base_voices.get("en") or next(iter(self._rules.base_voices.values()), None)
        if converter is None or base_voice is None or self._engines.find_voice(base_voice) is None:
            raise InvalidRequest(
                f"{field}: voices cannot be cloned on this server (no base voice or converter)"
            )
        return converter, base_voice

    def _touch(self, key: str) -> bool:
        """Whether the blob exists; if so it counts as used now (retention)."""
        try:
            self._blobs.touch(key)
        except FileNotFoundError:
            return False
        return True

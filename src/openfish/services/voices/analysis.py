"""Voice analysis, a job kind, and the base voices' own profiles.

A made voice's analysis is a job: a made voice's clips are read back, the converter turns them into a
speaker profile (stored as a blob), and the voice becomes ``ready`` with its price captured — or
``failed`` with a reason and its price released — in the transaction that ends the job.

Running on the job queue, analysis is done by whichever process runs jobs (the embedded worker
or ``openfish worker``), survives restarts and is retried after a crash like any other job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.audio.decode import UndecodableAudio, decode_audio
from openfish.engines.base import EngineError, SynthesisOptions, VoiceConverter
from openfish.engines.registry import EngineRegistry
from openfish.jobs.kinds import JobFailed, JobKind, Progress
from openfish.jobs.queue import SUCCEEDED
from openfish.services.runtime.workers import WorkerPool
from openfish.services.voices.uploads import ANALYSIS_RATE
from openfish.store.blobs import BlobStore
from openfish.store.database import Database
from openfish.store.models import Job, Voice

#: Where voices keep their blobs: reference clips, profiles, the base voices' profiles.
VOICE_AREA = "voices"


def voice_hold_reference(voice_id: str) -> str:
    """Ledger reference of a voice's creation price."""
    return f"voice:{voice_id}"


def reference_key(voice_id: str, index: int) -> str:
    """Blob key of a voice's ``index``-th reference clip."""
    return f"{VOICE_AREA}/{voice_id}_ref{index}.wav"


def profile_key(voice_id: str) -> str:
    """Blob key of a voice's analysed speaker profile."""
    return f"{VOICE_AREA}/{voice_id}_profile.bin"


#: Phonetically varied sentences a base voice speaks once so its own profile can be measured.
BASE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "A large rainbow appeared over the valley after the afternoon thunderstorm.",
    "Please remember to bring your umbrella, your ticket, and a warm jacket tomorrow.",
    "Zebras, giraffes and elephants gathered quietly around the muddy water hole.",
)


class BaseProfiles:
    """The speaker profiles of the built-in base voices, measured once and kept."""

    def __init__(self, engines: EngineRegistry, blobs: BlobStore) -> None:
        self._engines = engines
        self._blobs = blobs

    def profile(self, base_voice: str, converter: VoiceConverter) -> bytes:
        """The profile of ``base_voice`` as ``converter`` measures it (blocking: run in the pool)."""

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


@dataclass(frozen=True)
class VoiceAnalysisPayload:
    """The voice to analyse (its clips are blobs under its id)."""

    voice_id: str


class VoiceAnalysis(JobKind[VoiceAnalysisPayload]):
    """Turns a new voice's reference clips into its speaker profile."""

    name = "voice"
    payload_type = VoiceAnalysisPayload
    surface = "voices"
    noun = "voice analysis"

    def __init__(
        self,
        db: Database,
        engines: EngineRegistry,
        blobs: BlobStore,
        pool: WorkerPool,
        base_profiles: BaseProfiles,
    ) -> None:
        self._db = db
        self._engines = engines
        self._blobs = blobs
        self._pool = pool
        self._base_profiles = base_profiles

    def hold_reference(self, job: Job) -> str:
        """The price is held under the voice's name, so deleting the voice can release it."""
        return voice_hold_reference(self.payload(job).voice_id)

    async def run(self, job: Job, progress: Progress) -> dict[str, Any]:
        """Analyse the clips into the voice's profile, and measure its base voice's if not yet."""
        voice_id = self.payload(job).voice_id
        async with self._db.session() as session:
            voice = await session.get(Voice, voice_id)
        if voice is None or voice.status != "processing":
            raise JobFailed(f"voice {voice_id} was deleted before its analysis")
        converter = self._engines.converter(voice.converter)
        try:
            if converter is None:
                raise EngineError(f"the {voice.converter} converter is not installed")
            await self._pool.submit(lambda: self._analyse(voice, converter))
            progress(0.8)
            await self._pool.submit(lambda: self._base_profiles.profile(voice.base_voice, converter))
        except (EngineError, UndecodableAudio, ValueError, OSError) as exc:
            raise JobFailed(f"analysis failed: {exc}") from exc
        return {"voiceId": voice_id}

    async def settled(self, job: Job, status: str, error: str | None, session: AsyncSession) -> bool:
        """The voice becomes ready or failed with the job; False if it was deleted meanwhile."""
        ready = status == SUCCEEDED
        reason = (error or status)[:500]  # the column's width
        outcome = await session.execute(
            update(Voice)
            .where(Voice.id == self.payload(job).voice_id, Voice.status == "processing")
            .values(status="ready" if ready else "failed", failure_reason=None if ready else reason)
            .execution_options(synchronize_session=False)
        )
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]

    def _analyse(self, voice: Voice, converter: VoiceConverter) -> None:
        clips = []
        for index in range(voice.reference_count):
            decoded = decode_audio(self._blobs.get(reference_key(voice.id, index)))
            clips.append(decoded.samples)
        self._blobs.put(profile_key(voice.id), converter.analyse(clips, ANALYSIS_RATE))

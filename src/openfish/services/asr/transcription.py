"""Speech to text: audio from an upload, a URL this server issued, or (if allowed) the web;
decoded with limits, priced per second, held before and captured after the transcription."""

from __future__ import annotations

import math
from dataclasses import dataclass

from openfish.audio.decode import AudioTooLong, UndecodableAudio, decode_audio
from openfish.config import Settings
from openfish.engines.base import DecodeOptions, EngineError, Transcript, TranscriptionEngine
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable, InvalidRequest, PayloadTooLarge, Unprocessable
from openfish.services.accounts.billing import BillingService, ChargeResult
from openfish.services.media.inputs import MediaInputs
from openfish.services.runtime.workers import WorkerPool

SURFACE = "asr"


@dataclass(frozen=True)
class TranscriptionResult:
    """A transcript and what it cost."""

    transcript: Transcript
    credits: int
    charge: ChargeResult


class TranscriptionService:
    """Turns audio into text with timestamps."""

    def __init__(
        self,
        settings: Settings,
        billing: BillingService,
        engines: EngineRegistry,
        pool: WorkerPool,
        media: MediaInputs,
    ) -> None:
        self._settings = settings
        self._billing = billing
        self._engines = engines
        self._pool = pool
        self._media = media

    async def audio_from_url(self, account_id: str, url: str) -> bytes:
        """The bytes behind ``audioUrl`` (see ``MediaInputs``)."""
        return await self._media.read(account_id, url, label="audioUrl")

    def check(
        self, model: str | None, language: str | None, task: str = "transcribe"
    ) -> tuple[TranscriptionEngine, str | None]:
        """The engine and language code (None: detect) for a request, or 400 saying what is wrong.
        Called before any audio is fetched or decoded."""
        engine = self.engine(model)
        wanted = None if language in (None, "", "auto") else language.lower()
        if wanted is not None and wanted not in engine.languages():
            raise InvalidRequest(f"language: {language!r} is not a language {engine.name} knows")
        if task not in engine.tasks():
            raise InvalidRequest(
                f"model: {engine.name} cannot {task} (it can {', '.join(sorted(engine.tasks()))})"
            )
        return engine, wanted

    def models(self) -> list[str]:
        """The names of the transcription models here."""
        return [engine.name for engine in self._engines.transcribers()]

    def engine(self, model: str | None) -> TranscriptionEngine:
        """The engine for ``model`` (default from settings)."""
        name = model or self._settings.asr.default_model
        engine = self._engines.transcriber(name)
        if engine is None:
            known = ", ".join(e.name for e in self._engines.transcribers()) or "none"
            raise InvalidRequest(f"model: no transcription model {name!r} here (available: {known})")
        return engine

    async def transcribe(
        self,
        account_id: str,
        data: bytes,
        *,
        language: str | None,
        words: bool,
        model: str | None,
        reference: str,
        options: DecodeOptions | None = None,
    ) -> TranscriptionResult:
        """Decode, check, hold, transcribe (or translate, per ``options``), capture; nothing is
        charged if anything fails. Translation is billed like transcription: per second of audio."""
        rules = self._settings.asr
        options = options or DecodeOptions()
        engine, wanted = self.check(model, language, options.task)
        if len(data) > rules.max_bytes:
            raise PayloadTooLarge(f"the audio is larger than {rules.max_bytes} bytes")
        try:
            decoded = await self._pool.submit(lambda: decode_audio(data, max_seconds=rules.max_seconds))
        except AudioTooLong as exc:
            raise PayloadTooLarge(f"the audio is longer than {rules.max_seconds:g} s") from exc
        except UndecodableAudio as exc:
            raise InvalidRequest(f"file: not audio that can be decoded ({exc})") from exc
        credits = math.ceil(decoded.duration_seconds) * rules.credits_per_second
        seconds = math.ceil(decoded.duration_seconds)
        async with self._billing.metered(
            account_id, credits, reference=reference, surface=SURFACE, units=seconds
        ) as charge:
            try:
                transcript = await self._pool.submit(
                    lambda: engine.transcribe(
                        decoded.samples, decoded.sample_rate, language=wanted, words=words, options=options
                    )
                )
            except EngineError as exc:
                raise EngineUnavailable(f"transcription failed: {exc}", retry_after=5) from exc
            except ValueError as exc:
                raise Unprocessable(f"the audio cannot be transcribed: {exc}") from exc
        return TranscriptionResult(transcript=transcript, credits=credits, charge=charge)

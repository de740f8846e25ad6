"""Realtime ASR sessions: 16-bit PCM in any common rate, resampled to 16 kHz, billed per second of
audio received, transcribed by ``LiveTranscriber`` into partial and final transcripts.

Credits for each new second are reserved before its audio is taken; when the account cannot cover
it the audio is refused (InsufficientCredits) and the stream ends, charged for what it had.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable

import numpy as np

from openfish.audio.resample import StreamResampler
from openfish.config import Settings
from openfish.engines.base import EngineError
from openfish.engines.registry import EngineRegistry
from openfish.errors import EngineUnavailable
from openfish.services.accounts.billing import BillingService
from openfish.services.accounts.sessions import ASR_SURFACE, CreditMeter
from openfish.services.asr.live import LiveEvent, LiveTranscriber, PartialBudget
from openfish.services.asr.transcription import TranscriptionService
from openfish.services.runtime.workers import WorkerPool

RATE = LiveTranscriber.SAMPLE_RATE
#: Sample rates a client may send (resampled to 16 kHz on the way in).
SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)


class LiveListening:
    """One realtime ASR stream (``start`` … ``stop``)."""

    def __init__(
        self,
        transcriber: LiveTranscriber,
        meter: CreditMeter,
        *,
        sample_rate: int,
        credits_per_second: int,
    ) -> None:
        self._transcriber = transcriber
        self._meter = meter
        self._rate = sample_rate
        self._price = credits_per_second
        self._resampler = StreamResampler(sample_rate, RATE)
        self._samples = 0  # received, at the client's rate
        self._odd = b""  # half a sample left over from the last frame

    @property
    def meter(self) -> CreditMeter:
        """What the stream holds and has used."""
        return self._meter

    @property
    def seconds(self) -> float:
        """Audio received so far."""
        return self._samples / self._rate

    async def feed(self, pcm: bytes) -> None:
        """Take 16-bit little-endian mono PCM (any frame length)."""
        data = self._odd + pcm
        whole = len(data) - len(data) % 2
        self._odd = data[whole:]
        count = whole // 2
        if count == 0:
            return
        billed = math.ceil(self._samples / self._rate)
        due = math.ceil((self._samples + count) / self._rate) - billed
        if due:
            await self._meter.reserve(due * self._price)
        self._samples += count
        if due:
            self._meter.served(due * self._price, due)
        samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        await self._feed(self._resampler.process(samples))

    async def finish(self) -> None:
        """End of audio: the last utterance is transcribed and every event sent."""
        await self._feed(self._resampler.flush())
        try:
            await self._transcriber.finish()
        except EngineError as exc:
            raise EngineUnavailable(f"transcription failed: {exc}", retry_after=5) from exc

    async def aclose(self) -> None:
        """Abandon the stream (client gone or stream failed)."""
        await self._transcriber.aclose()

    async def _feed(self, samples: np.typing.NDArray[np.float32]) -> None:
        try:
            await self._transcriber.feed(samples)
        except EngineError as exc:
            raise EngineUnavailable(f"transcription failed: {exc}", retry_after=5) from exc


class LiveListeningFactory:
    """Opens ``LiveListening`` streams with everything they need from the app."""

    def __init__(
        self,
        settings: Settings,
        engines: EngineRegistry,
        pool: WorkerPool,
        billing: BillingService,
        transcription: TranscriptionService,
    ) -> None:
        self._settings = settings
        self._engines = engines
        self._pool = pool
        self._billing = billing
        self._transcription = transcription
        # Partials may use half the cores at once; the rest stay free for finals.
        self._partials = PartialBudget(limit=(os.cpu_count() or 2) // 2)

    def open(
        self,
        account_id: str,
        emit: Callable[[LiveEvent], Awaitable[None]],
        *,
        language: str | None,
        model: str | None,
        words: bool,
        sample_rate: int,
    ) -> LiveListening:
        """A new stream, or the 4xx saying why not (unknown model or language, no VAD)."""
        realtime = self._settings.realtime
        engine, wanted = self._transcription.check(model or self._model_for(language), language)
        vad = self._engines.vad
        if vad is None:
            raise EngineUnavailable(
                "voice activity detection is not available on this server", retry_after=60
            )
        price = self._settings.asr.credits_per_second
        meter = CreditMeter(
            self._billing, account_id, ASR_SURFACE, block=realtime.asr_hold_seconds * price, prefix="rasr"
        )
        transcriber = LiveTranscriber(
            engine, vad, self._pool, realtime, emit, language=wanted, words=words, partials=self._partials
        )
        return LiveListening(transcriber, meter, sample_rate=sample_rate, credits_per_second=price)

    def _model_for(self, language: str | None) -> str | None:
        """The configured realtime model; else, for English, the English model when installed (a
        final arrives in half the time); else the server's default model."""
        realtime = self._settings.realtime
        if realtime.asr_model:
            return realtime.asr_model
        english = realtime.asr_english_model
        if (language or "").lower() == "en" and english and self._engines.transcriber(english) is not None:
            return english
        return None

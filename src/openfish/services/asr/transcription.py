"""Speech to text: audio from an upload, a URL this server issued, or (if allowed) the web;
decoded with limits, priced per second, held before and captured after the transcription — whole
(``transcribe``) or segment by segment as the engine decodes them (``stream``)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from openfish.audio.decode import AudioTooLong, DecodedAudio, UndecodableAudio, decode_audio
from openfish.config import Settings
from openfish.engines.base import DecodeOptions, EngineError, Segment, Transcript, TranscriptionEngine
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


@dataclass(frozen=True)
class TranscriptionStream:
    """A transcription under way: ``items`` yields each segment as it is decoded, then the whole
    ``Transcript`` (already charged for). Closing ``items`` early stops the decode and releases
    the hold."""

    credits: int
    charge: ChargeResult
    items: AsyncGenerator[Segment | Transcript, None]


@dataclass(frozen=True)
class MeasuredAudio:
    """Audio checked and priced for a transcription; nothing held, nothing transcribed yet."""

    model: str
    duration_seconds: float
    seconds: int
    credits: int


@dataclass(frozen=True)
class _Work:
    """A transcription checked, decoded and priced, not yet run."""

    engine: TranscriptionEngine
    language: str | None
    words: bool
    options: DecodeOptions
    audio: DecodedAudio
    seconds: int
    credits: int


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
        work = await self._prepare(data, language, words, model, options or DecodeOptions())
        async with self._billing.metered(
            account_id, work.credits, reference=reference, surface=SURFACE, units=work.seconds
        ) as charge:
            transcript = await self._run(work)
        return TranscriptionResult(transcript=transcript, credits=work.credits, charge=charge)

    async def stream(
        self,
        account_id: str,
        data: bytes,
        *,
        language: str | None,
        words: bool,
        model: str | None,
        reference: str,
        options: DecodeOptions | None = None,
    ) -> TranscriptionStream:
        """Like ``transcribe``, but the segments are handed on as they are decoded. Everything that
        can be refused is refused here (the model is loaded too), then the price is held; the hold
        is captured once the whole transcript is made — before it is handed on — and released if
        the decode fails or the stream is abandoned (a client that disconnects pays nothing, and
        its decode stops after the segment under way), as a streamed TTS answer settles."""
        work = await self._prepare(data, language, words, model, options or DecodeOptions())
        try:
            await self._pool.submit(work.engine.load)
        except EngineError as exc:
            raise EngineUnavailable(f"transcription failed: {exc}", retry_after=5) from exc
        charge = await self._billing.hold(
            account_id, work.credits, reference=reference, surface=SURFACE, units=work.seconds
        )
        return TranscriptionStream(credits=work.credits, charge=charge, items=self._relay(work, reference))

    async def measure(
        self, data: bytes, *, language: str | None, words: bool, model: str | None
    ) -> MeasuredAudio:
        """Every refusal ``transcribe`` makes (model, language, size, decode, length) and the price,
        with nothing held or transcribed: what a transcription job checks at submit."""
        work = await self._prepare(data, language, words, model, DecodeOptions())
        return MeasuredAudio(work.engine.name, work.audio.duration_seconds, work.seconds, work.credits)

    async def transcript_of(
        self,
        data: bytes,
        *,
        language: str | None,
        words: bool,
        model: str | None,
        on_segment: Callable[[Segment], None] | None = None,
    ) -> Transcript:
        """The transcript of ``data``, checked and decoded as ``transcribe`` does but unbilled: for
        work whose credits are held elsewhere (a job's, by the job framework). ``on_segment`` gets
        each segment as it is decoded, on the pool's thread; what it raises ends the decode."""
        work = await self._prepare(data, language, words, model, DecodeOptions())
        return await self._run(work, on_segment)

    async def settle(self, reference: str) -> None:
        """Release the hold of a stream that never finished (idempotent; nothing after capture)."""
        await self._billing.settle(reference, succeeded=False)

    async def _relay(self, work: _Work, reference: str) -> AsyncGenerator[Segment | Transcript, None]:
        """The decode in the worker pool, its segments brought to the event loop as they come
        (``call_soon_threadsafe`` onto a queue: neither side waits for the other), then the
        transcript once it is charged for."""
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[Segment | None] = asyncio.Queue()
        abandoned = threading.Event()

        def relay(segment: Segment) -> None:  # on the pool's thread, between segments
            if abandoned.is_set():
                raise _Abandoned
            loop.call_soon_threadsafe(arrived.put_nowait, segment)

        decoding = asyncio.ensure_future(self._run(work, relay))
        # Runs after every segment the thread queued: those callbacks were scheduled first.
        decoding.add_done_callback(lambda _: arrived.put_nowait(None))
        completed = False
        try:
            while (segment := await arrived.get()) is not None:
                yield segment
            transcript = await decoding
            await self._billing.settle(reference, succeeded=True)
            completed = True
            yield transcript
        finally:
            if not completed:
                abandoned.set()
                if not decoding.cancel() and not decoding.cancelled():
                    decoding.exception()  # it ended already; what it raised matters no more
                await self._billing.settle(reference, succeeded=False)

    async def _prepare(
        self, data: bytes, language: str | None, words: bool, model: str | None, options: DecodeOptions
    ) -> _Work:
        """Checked, decoded and priced; nothing held yet."""
        rules = self._settings.asr
        engine, wanted = self.check(model, language, options.task)
        if len(data) > rules.max_bytes:
            raise PayloadTooLarge(f"the audio is larger than {rules.max_bytes} bytes")
        try:
            decoded = await self._pool.submit(lambda: decode_audio(data, max_seconds=rules.max_seconds))
        except AudioTooLong as exc:
            raise PayloadTooLarge(f"the audio is longer than {rules.max_seconds:g} s") from exc
        except UndecodableAudio as exc:
            raise InvalidRequest(f"file: not audio that can be decoded ({exc})") from exc
        seconds = math.ceil(decoded.duration_seconds)
        return _Work(engine, wanted, words, options, decoded, seconds, seconds * rules.credits_per_second)

    async def _run(self, work: _Work, on_segment: Callable[[Segment], None] | None = None) -> Transcript:
        """The engine's transcript, made in the worker pool; its failures in our error tree."""
        audio = work.audio
        try:
            return await self._pool.submit(
                lambda: work.engine.transcribe(
                    audio.samples,
                    audio.sample_rate,
                    language=work.language,
                    words=work.words,
                    options=work.options,
                    on_segment=on_segment,
                )
            )
        except EngineError as exc:
            raise EngineUnavailable(f"transcription failed: {exc}", retry_after=5) from exc
        except ValueError as exc:
            raise Unprocessable(f"the audio cannot be transcribed: {exc}") from exc


def transcript_document(transcript: Transcript, credits: int, quota_remaining: int) -> dict[str, Any]:
    """A transcript as the API answers it (``TranscriptionOut``: text, duration, language, segments
    with optional words, credits used, quota remaining) — the sync answer and a job's stored JSON."""
    return {
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "language": transcript.language,
        "segments": [
            {
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "words": None
                if segment.words is None
                else [
                    {"start": w.start, "end": w.end, "word": w.text, "probability": w.probability}
                    for w in segment.words
                ],
            }
            for segment in transcript.segments
        ],
        "credits_used": credits,
        "quota_remaining": quota_remaining,
    }


class _Abandoned(Exception):
    """Raised on the pool's thread at the next segment of a stream nobody reads any more, to end
    its decode; it never leaves this module (the stream's task is cancelled by then)."""

"""Making speech: credits held up front, audio synthesized piece by piece in the worker pool,
encoded as it is made, and the hold captured only when the last byte is ready.

A stream that fails or is abandoned releases its hold, so nobody pays for audio they did not get.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.errors import EngineUnavailable, Unprocessable
from openfish.services.accounts.billing import BillingService, ChargeResult
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.planner import Conversion, SpeechPlanner, SynthesisPlan, TtsRequest
from openfish.services.tts.render import NoAudio, Renderer, render_whole
from openfish.store.blobs import BlobStore

SURFACE = "tts"
#: Blob store areas of rendered TTS audio (content-addressed) and of TTS job output.
STORED_AREA = "tts"
JOB_AREA = "jobs"


def stored_audio_key(name: str) -> str:
    """The blob key of audio served at ``/api/open/v1/audio/<name>``: job output is named after its
    job (``job_…``), ``cache=true`` audio after its content hash."""
    return f"{JOB_AREA if name.startswith('job_') else STORED_AREA}/{name}"


#: Finds the made voice behind a voice id: (base voice id, conversion), or None for built-ins.
ConversionResolver = Callable[[str, str], Awaitable[tuple[str, Conversion] | None]]
#: Counts a charged request that named a voice as one of its tasks: (account id, voice id, the
#: transaction to count in or None for one of its own); ``VoiceService.count_task``.
TaskCounter = Callable[[str, str, AsyncSession | None], Awaitable[None]]


@dataclass(frozen=True)
class StoredSpeech:
    """Audio rendered whole and kept in the blob store (``cache=true``)."""

    plan: SynthesisPlan
    name: str
    hold: ChargeResult
    reused: bool


def stored_name(plan: SynthesisPlan) -> str:
    """A content address for the audio a plan makes: same inputs, same name."""
    identity = json.dumps(
        {
            "engine": plan.engine.name,
            "voice": plan.voice.id,
            "pieces": plan.pieces,
            "noise_scale": plan.options.noise_scale,
            "noise_w": plan.options.noise_w,
            "tempo": round(plan.tempo, 6),
            "pitch": round(plan.pitch_semitones, 6),
            "gain": round(plan.gain_db, 6),
            "format": plan.format,
            # Only when asked for, so the names of audio stored before these options stay the same.
            **({"rate": plan.output_rate} if plan.output_rate else {}),
            **({"bitrate": plan.bitrate_kbps} if plan.bitrate_kbps else {}),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()
    return f"{digest}_{plan.sample_rate}.{plan.format}"


@dataclass(frozen=True)
class SpeechStream:
    """A synthesis that has been admitted and paid for (held), ready to be iterated."""

    plan: SynthesisPlan
    content_type: str
    hold: ChargeResult
    body: AsyncIterator[bytes]


class SynthesisService:
    """Admits TTS requests and produces their audio without blocking the event loop."""

    def __init__(
        self,
        planner: SpeechPlanner,
        billing: BillingService,
        settings: Settings,
        pool: WorkerPool,
        blobs: BlobStore,
        conversions: ConversionResolver | None = None,
        count_task: TaskCounter | None = None,
    ) -> None:
        self._conversions = conversions
        self._count_task = count_task
        self._blobs = blobs
        self._planner = planner
        self._billing = billing
        self._settings = settings
        self._pool = pool
        self._active = 0

    @property
    def active_streams(self) -> int:
        """Syntheses now producing audio."""
        return self._active

    async def start(self, account_id: str, request: TtsRequest, reference: str) -> SpeechStream:
        """Validate, admit and hold credits; the returned body makes the audio as it is read."""
        plan = await self.plan(account_id, request)
        if self._active >= self._settings.tts.max_streams:
            raise EngineUnavailable("All synthesis workers are busy; retry shortly.", retry_after=1)
        renderer = Renderer(plan)
        hold = await self._billing.hold(
            account_id, plan.credits, reference=reference, surface=SURFACE, units=plan.characters
        )
        return SpeechStream(
            plan=plan,
            content_type=renderer.encoder.content_type,
            hold=hold,
            body=self._produce(account_id, plan, renderer, reference),
        )

    async def render(self, account_id: str, request: TtsRequest, reference: str) -> StoredSpeech:
        """Make the whole audio and store it, or reuse the stored copy of an identical request.

        Charged like a streamed request: held first, captured once the audio is stored.
        """
        plan = await self.plan(account_id, request)
        name = stored_name(plan)
        key = f"{STORED_AREA}/{name}"
        reused = await self._pool.submit(lambda: self._reuse(key))
        if not reused and self._active >= self._settings.tts.max_streams:
            raise EngineUnavailable("All synthesis workers are busy; retry shortly.", retry_after=1)
        async with self._billing.metered(
            account_id, plan.credits, reference=reference, surface=SURFACE, units=plan.characters
        ) as hold:
            if not reused:
                self._active += 1
                try:
                    data = await self.render_audio(plan)
                    await self._pool.submit(lambda: self._blobs.put(key, data))
                except NoAudio as exc:
                    raise Unprocessable(f"text: {exc}") from exc
                finally:
                    self._active -= 1
            await self.count_task(account_id, plan.named_voice)
        return StoredSpeech(plan=plan, name=name, hold=hold, reused=reused)

    def _reuse(self, key: str) -> bool:
        """Whether the audio is stored already; if so it counts as used now (retention)."""
        try:
            self._blobs.touch(key)
        except FileNotFoundError:
            return False
        return True

    async def render_audio(self, plan: SynthesisPlan) -> bytes:
        """The whole audio of ``plan``, encoded, made in the worker pool (no billing here)."""
        return await self._pool.submit(lambda: render_whole(plan))

    async def plan(self, account_id: str, request: TtsRequest) -> SynthesisPlan:
        """Everything about a request decided and checked (voice access included); nothing made yet."""
        self._planner.check_text(request)
        return await self._plan_with(account_id, request, self._planner.plan)

    async def plan_stream(self, account_id: str, request: TtsRequest) -> SynthesisPlan:
        """Like ``plan`` for a realtime stream whose text has not arrived yet (no pieces, no price)."""
        return await self._plan_with(account_id, request, self._planner.plan_stream)

    async def _plan_with(
        self, account_id: str, request: TtsRequest, planner: Callable[[TtsRequest], SynthesisPlan]
    ) -> SynthesisPlan:
        conversion = None
        named = request.voice_id or None
        if request.voice_id and self._conversions is not None:
            resolved = await self._conversions(account_id, request.voice_id)
            if resolved is not None:
                base_voice, conversion = resolved
                request = replace(request, voice_id=base_voice)
        # Planning may load an engine on first use: never on the event loop.
        plan = await self._pool.submit(lambda: planner(request))
        return replace(plan, conversion=conversion, named_voice=named)

    async def count_task(
        self, account_id: str, voice_id: str | None, session: AsyncSession | None = None
    ) -> None:
        """Count a charged request as a task of the voice it named (none named: nothing), in
        ``session``'s transaction or one of its own. Called before the capture, inside the charged
        work: a failure to count fails the request, which is then not charged."""
        if voice_id and self._count_task is not None:
            await self._count_task(account_id, voice_id, session)

    async def settle(self, reference: str) -> None:
        """Release the hold if its stream never finished (idempotent; safe after capture)."""
        await self._billing.settle(reference, succeeded=False)

    async def _produce(
        self, account_id: str, plan: SynthesisPlan, renderer: Renderer, reference: str
    ) -> AsyncIterator[bytes]:
        completed = False
        self._active += 1
        try:
            header = renderer.header()
            if header:
                yield header
            samples = 0
            async for encoded, made in self._encoded_pieces(plan, renderer):
                samples += made
                if encoded:
                    yield encoded
            if samples == 0:
                # Headers are sent by now: failing the stream is how the client learns of it.
                raise NoAudio(f"{plan.engine.name} made no audio for this text")
            await self.count_task(account_id, plan.named_voice)
            completed = True
        finally:
            self._active -= 1
            await self._billing.settle(reference, succeeded=completed)

    async def _encoded_pieces(
        self, plan: SynthesisPlan, renderer: Renderer
    ) -> AsyncIterator[tuple[bytes, int]]:
        """Each piece rendered and encoded in the pool, with its sample count; the next is queued
        while this one is sent, due when the listener will have played everything sent so far. The
        last job also ends the stream (tempo filter and encoder flushed)."""
        rate = plan.sample_rate
        last = len(plan.pieces) - 1

        def job(index: int) -> Callable[[], tuple[bytes, int]]:
            def run() -> tuple[bytes, int]:
                encoded, samples = renderer.piece(plan.pieces[index])
                if index == last:
                    end, tail = renderer.finish()
                    return encoded + end, samples + tail
                return encoded, samples

            return run

        started = time.monotonic()
        audio_seconds = 0.0
        pending: asyncio.Future[tuple[bytes, int]] | None = None
        try:
            for index in range(len(plan.pieces)):
                encoded, samples = await (pending or self._pool.submit(job(index)))
                audio_seconds += samples / rate
                pending = None
                if index < last:
                    pending = self._pool.submit(job(index + 1), deadline=started + audio_seconds)
                yield encoded, samples
        finally:
            if pending is not None:
                pending.cancel()

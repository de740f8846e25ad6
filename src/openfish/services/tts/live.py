"""Realtime TTS: text that arrives in fragments is spoken clause by clause, as soon as each clause is
complete, into one continuous encoded audio stream.

One task per stream takes the pieces in order, makes each in the worker pool (synthesis, voice
conversion, tempo/pitch, gain, encoding — the same chain as ``/speech/tts``) and hands the bytes to
``send``. Credits for a piece are reserved before it is made and counted as served only once
``send`` has returned, so a client that vanishes mid-piece does not pay for it.

Backpressure: ``add`` waits while more than ``max_buffered_chars`` of text are waiting to be
spoken, and a piece is not made until the previous one was sent, so a client that reads slowly
slows the stream down instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openfish.config import RealtimeSettings
from openfish.engines.base import EngineError
from openfish.errors import EngineUnavailable, InvalidRequest, OpenfishError
from openfish.services.accounts.sessions import CreditMeter
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.planner import SynthesisPlan
from openfish.services.tts.render import Renderer
from openfish.services.tts.text_split import LiveTextBuffer, is_speakable

#: Audio out: the encoded bytes of one piece (or the encoder's tail at the end).
SendAudio = Callable[[bytes], Awaitable[None]]
#: Told when the stream fails on its own (engine error, credits ran out) with the error to report.
OnFailure = Callable[[OpenfishError], Awaitable[None]]
#: Told once when the stream ends normally having spoken something (it counts as a task of its voice).
OnSpoken = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class _Mark:
    """Runs ``then`` once every piece queued before it has been sent."""

    then: Callable[[], Awaitable[None]]


class _End:
    """The last item: flush the tempo filter and the encoder."""


class LiveSpeech:
    """One realtime TTS stream (``start`` … ``stop``)."""

    def __init__(
        self,
        plan: SynthesisPlan,
        pool: WorkerPool,
        meter: CreditMeter,
        settings: RealtimeSettings,
        *,
        credits_per_character: int,
        send: SendAudio,
        on_failure: OnFailure,
        on_spoken: OnSpoken | None = None,
    ) -> None:
        self._plan = plan
        self._pool = pool
        self._meter = meter
        self._settings = settings
        self._price = credits_per_character
        self._send = send
        self._on_failure = on_failure
        self._on_spoken = on_spoken
        self._renderer = Renderer(plan)
        self._text = LiveTextBuffer()
        self._queue: asyncio.Queue[str | _Mark | _End] = asyncio.Queue()
        self._queued = 0  # characters of pieces queued and not yet sent
        self._drained = asyncio.Event()
        self._received = 0
        self._started = time.monotonic()
        self._audio_seconds = 0.0
        self._task = asyncio.create_task(self._run())

    @property
    def content_type(self) -> str:
        """The Content-Type of the stream's audio (``audio/pcm;rate=22050`` and the like)."""
        return self._renderer.encoder.content_type

    @property
    def busy(self) -> bool:
        """Whether complete pieces are still waiting to be spoken."""
        return self._queued > 0 and not self._task.done()

    def _waiting(self) -> int:
        return len(self._text.pending) + self._queued

    def _enqueue(self, pieces: list[str]) -> None:
        for piece in pieces:
            if not is_speakable(piece):
                continue  # punctuation alone ("...", "—") makes no sound and is not billed
            self._queued += len(piece)
            self._queue.put_nowait(piece)

    async def add(self, text: str) -> None:
        """Take a fragment of text; complete clauses start being spoken at once."""
        if len(text) > self._settings.max_buffered_chars:
            raise InvalidRequest(f"text: at most {self._settings.max_buffered_chars} characters at a time")
        if self._received + len(text) > self._settings.max_session_chars:
            raise InvalidRequest(f"text: at most {self._settings.max_session_chars} characters per stream")
        while self._waiting() + len(text) > self._settings.max_buffered_chars and not self._task.done():
            self._drained.clear()
            await self._drained.wait()
        self._received += len(text)
        self._enqueue(self._text.add(text))

    async def flush(self, then: Callable[[], Awaitable[None]] | None = None) -> None:
        """Speak what is buffered even though its clause is not complete; ``then`` runs once all
        audio up to here has been sent."""
        self._enqueue(self._text.flush())
        if then is not None:
            self._queue.put_nowait(_Mark(then))

    async def finish(self) -> bool:
        """Speak the rest, end the audio stream and wait until everything was sent. False when the
        stream had already failed (``on_failure`` was told)."""
        await self.flush()
        self._queue.put_nowait(_End())
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        return not self._task.cancelled() and self._task.result()

    async def aclose(self) -> None:
        """Abandon the stream (client gone): stop making audio; idempotent."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> bool:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _End):
                    await self._send((await self._pool.submit(self._renderer.finish))[0])
                    if self._meter.units and self._on_spoken is not None:
                        await self._on_spoken()
                    return True
                if isinstance(item, _Mark):
                    await item.then()
                    continue
                await self._speak(item)
        except OpenfishError as error:
            await self._on_failure(error)
            return False
        except EngineError as exc:
            await self._on_failure(EngineUnavailable(f"synthesis failed: {exc}", retry_after=5))
            return False
        finally:
            self._queued = 0
            self._drained.set()

    async def _speak(self, piece: str) -> None:
        credits = len(piece) * self._price
        await self._meter.reserve(credits)
        # Due when the listener will have played everything sent so far (earliest deadline first).
        deadline = self._started + self._audio_seconds
        encoded, samples = await self._pool.submit(lambda: self._renderer.piece(piece), deadline=deadline)
        await self._send(encoded)
        self._meter.served(credits, len(piece))
        self._audio_seconds += samples / self._plan.sample_rate
        self._queued -= len(piece)
        self._drained.set()

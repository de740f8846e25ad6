"""The decodes of one realtime ASR stream: run one after another on a background task.

:class:`~openfish.services.asr.live.LiveTranscriber` decides *what* to decode (the VAD endpointing);
:class:`LiveDecodes` decides *when*: it queues the requests, runs them in order on one task per
stream, turns transcripts into events and hands them to ``emit``. One task in request order means
events leave in the order they were asked for, so a partial can never arrive after its utterance's
final. It also holds the stream's backpressure, its first error and whether it was abandoned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openfish.engines.base import Audio, Transcript, TranscriptionEngine
from openfish.services.asr.live_transcripts import (
    FinalTranscript,
    LiveEvent,
    PartialBudget,
    PartialTranscript,
)
from openfish.services.runtime.workers import WorkerPool

logger = logging.getLogger("openfish.realtime")

#: Finals waiting to be decoded before ``feed`` waits (a client sending faster than real time).
MAX_PENDING_DECODES = 3


@dataclass(frozen=True)
class Decode:
    """One decode request: ``audio`` begins ``offset`` seconds into the stream."""

    final: bool
    audio: Audio
    offset: float
    start: float
    end: float
    #: A decode of exactly this audio already under way (the early final), to be awaited instead.
    ready: asyncio.Future[Transcript] | None = None


class LiveDecodes:
    """The decode queue of one stream and the task that works through it.

    ``emit`` runs on that task; an exception it (or a decode) raises ends the task, and
    :meth:`raise_error` or :meth:`finish` raises it to the producer.
    """

    def __init__(
        self,
        engine: TranscriptionEngine,
        pool: WorkerPool,
        emit: Callable[[LiveEvent], Awaitable[None]],
        *,
        sample_rate: int,
        language: str | None,
        words: bool,
        partials: PartialBudget,
        partial_interval: float,
    ) -> None:
        self._engine, self._pool, self._emit = engine, pool, emit
        self._sample_rate = sample_rate
        self._language, self._words = language, words
        self._partials = partials
        self._partial_interval = partial_interval
        self._jobs: asyncio.Queue[Decode | None] = asyncio.Queue()
        self._pending = 0  # decodes queued or running
        self._drained = asyncio.Event()  # set whenever a decode is done (backpressure in feed)
        self._worker: asyncio.Task[None] | None = None
        self._closed = self._surfaced = False

    @property
    def pending(self) -> int:
        """Decodes queued or running."""
        return self._pending

    @property
    def closed(self) -> bool:
        """Whether the stream was abandoned (:meth:`aclose`): nothing more is emitted."""
        return self._closed

    def enqueue(self, job: Decode) -> None:
        """Queue ``job`` behind the ones already asked for, starting the task on first use."""
        self._jobs.put_nowait(job)
        self._pending += 1
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="live-asr-decodes")

    def submit_final(self, audio: Audio) -> asyncio.Future[Transcript]:
        """Decode ``audio`` as a final in the pool now, outside the queue (the early final)."""
        return self._pool.submit(self._transcriber(audio, final=True), deadline=time.monotonic())

    async def wait_for_room(self) -> None:
        """Wait while more than ``MAX_PENDING_DECODES`` decodes are waiting and the task still runs,
        so the queued utterances' audio cannot grow without bound."""
        while self._pending > MAX_PENDING_DECODES and self._worker is not None and not self._worker.done():
            self._drained.clear()
            await self._drained.wait()

    def raise_error(self) -> None:
        """Raise the error that ended the task, if one did."""
        worker = self._worker
        if worker is not None and worker.done() and not worker.cancelled() and worker.exception() is not None:
            self._surfaced = True
            worker.result()

    async def finish(self) -> None:
        """Wait until every queued decode has run and its event was emitted, then stop the task.
        Raises the first decode or ``emit`` error; returns early if :meth:`aclose` intervenes."""
        worker = self._worker
        if worker is None or self._closed:
            return
        if not worker.done():
            self._jobs.put_nowait(None)  # stops the worker once the queue is drained
        try:
            await worker
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                return  # aclose() abandoned the stream meanwhile
            raise
        except BaseException:
            self._surfaced = True
            raise
        self._worker = None

    async def aclose(self) -> None:
        """Cancel pending decodes and emit nothing more (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._drained.set()  # a feed waiting for decodes to drain returns (closed: a no-op)
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.cancel()
        if worker is asyncio.current_task():
            return  # called from ``emit``: the task ends when it resumes
        await asyncio.wait([worker])
        if not worker.cancelled() and worker.exception() is not None and not self._surfaced:
            # Nobody will call feed or finish again to see it; keep the failure in the logs.
            logger.warning(
                "realtime transcription failed after the stream was abandoned", exc_info=worker.exception()
            )

    async def _run(self) -> None:
        """The stream's decodes, one at a time in request order; errors end the task."""
        while (job := await self._jobs.get()) is not None:
            try:
                event = await self._decode(job)
                if event is not None and not self._closed:
                    await self._emit(event)
            finally:
                self._pending -= 1
                self._drained.set()

    def _transcriber(self, audio: Audio, *, final: bool) -> Callable[[], Transcript]:
        return functools.partial(
            self._engine.transcribe,
            audio,
            self._sample_rate,
            language=self._language,
            words=self._words and final,
        )

    async def _decode(self, job: Decode) -> LiveEvent | None:
        if job.ready is not None:
            transcript = await job.ready
        elif job.final:
            transcript = await self.submit_final(job.audio)
        elif not await self._partials.try_acquire():
            return None  # the machine is busy: skip this partial, the next one is due soon
        else:
            try:
                # Due before the next partial would be: finals and VAD windows go ahead of it.
                deadline = time.monotonic() + self._partial_interval
                transcript = await self._pool.submit(
                    self._transcriber(job.audio, final=False), deadline=deadline
                )
            finally:
                await self._partials.release()
        text = transcript.text.strip()
        if not text:
            return None
        if not job.final:
            return PartialTranscript(text=text, start=job.start)
        words = None
        if self._words:
            # Whisper puts a padded utterance's first word too early; the VAD's bounds are tighter.
            words = []
            for segment in transcript.segments:
                for word in segment.words or []:
                    start = min(max(word.start + job.offset, job.start), job.end)
                    end = min(max(word.end + job.offset, start), job.end)
                    words.append(dataclasses.replace(word, start=start, end=end))
        return FinalTranscript(
            text=text, start=job.start, end=job.end, language=transcript.language, words=words
        )


def discard(future: asyncio.Future[Transcript]) -> None:
    """Drop a decode nobody will await: cancel it if it has not run, and retrieve its outcome so a
    failure is not reported as never retrieved."""
    future.cancel()
    future.add_done_callback(lambda done: done.cancelled() or done.exception())

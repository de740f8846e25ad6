"""Realtime speech to text: a live 16 kHz stream cut into utterances by VAD and decoded by Whisper.

Audio arrives in chunks of any length. Whole VAD windows are scored in the worker pool; a window at
or above the speech threshold opens an utterance (with ~200 ms of the audio before it), and
``end_silence_ms`` of windows below a lower release threshold close it. Closed utterances are
decoded urgently and reported as :class:`FinalTranscript`; while one is still open, the audio so
far is decoded now and then for a :class:`PartialTranscript`. This module is the endpointing;
:class:`~openfish.services.asr.live_decodes.LiveDecodes` runs the decodes one after another on one
background task per stream and emits their events, so events leave in the order they were asked
for and a partial can never arrive after its utterance's final.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np

from openfish.config import RealtimeSettings
from openfish.engines.base import Audio, Transcript, TranscriptionEngine, VadEngine
from openfish.services.asr.live_decodes import Decode, LiveDecodes, discard
from openfish.services.asr.live_transcripts import (
    FinalTranscript,
    LiveEvent,
    PartialBudget,
    PartialTranscript,
)
from openfish.services.runtime.workers import WorkerPool

__all__ = ["FinalTranscript", "LiveEvent", "LiveTranscriber", "PartialBudget", "PartialTranscript"]

#: Audio kept before an utterance's first speech window and after its last one: onsets and word
#: endings are often quieter than the VAD threshold, and Whisper drops clipped words.
PAD_SECONDS = 0.2
#: Speech ends below ``threshold - HYSTERESIS`` (Silero's own rule), so a dip does not split words.
HYSTERESIS = 0.15
#: Silent windows (~100 ms) after which the early final is started: Silero's probability already
#: trails the sound by about as much, so the audio decoded holds the speech's end.
EARLY_FINAL_WINDOWS = 3
#: Shorter blips (clicks, a cough's onset) are not worth a decode.
MIN_SPEECH_SECONDS = 0.1


class LiveTranscriber:
    """One realtime ASR stream: 16 kHz mono float audio in, transcripts out through ``emit``.

    ``feed`` and ``finish`` are called by one producer; ``aclose`` may be called at any time.
    ``emit`` runs on the stream's background task; an exception it raises ends the stream like an
    engine error does, and the next ``feed`` or ``finish`` raises it.
    """

    SAMPLE_RATE = 16_000

    def __init__(
        self,
        engine: TranscriptionEngine,
        vad: VadEngine,
        pool: WorkerPool,
        settings: RealtimeSettings,
        emit: Callable[[LiveEvent], Awaitable[None]],
        *,
        language: str | None,
        words: bool = False,
        partials: PartialBudget | None = None,
    ) -> None:
        self._pool = pool
        self._decodes = LiveDecodes(
            engine,
            pool,
            emit,
            sample_rate=self.SAMPLE_RATE,
            language=language,
            words=words,
            partials=partials or PartialBudget(limit=1_000_000),
            partial_interval=settings.partial_interval_seconds,
        )
        self._vad = vad.stream()
        self._window = vad.window
        rate = self.SAMPLE_RATE
        self._threshold = settings.speech_threshold
        self._release = max(settings.speech_threshold - HYSTERESIS, 0.01)
        self._end_windows = math.ceil(settings.end_silence_ms * rate / 1000 / self._window)
        self._pad_windows = math.ceil(PAD_SECONDS * rate / self._window)
        self._min_speech = int(MIN_SPEECH_SECONDS * rate)
        self._partial_samples = int(settings.partial_interval_seconds * rate)
        self._max_samples = int(settings.max_utterance_seconds * rate)

        self._received = 0  # samples fed
        self._position = 0  # samples the VAD has judged (the next window starts here)
        self._carry = np.zeros(0, dtype=np.float32)  # the tail short of a whole window
        self._preroll: deque[Audio] = deque(maxlen=self._pad_windows)
        # The open utterance: its windows (padding included), the sample its audio starts at,
        # where its speech starts and ends, and how many windows have been silent since.
        self._utterance: list[Audio] | None = None
        self._offset = self._speech_start = self._speech_end = self._silent = 0
        self._next_partial = 0
        # The early final: a decode started once the silence after speech covers the trailing
        # padding, kept if no speech follows before the utterance is closed. It saves the rest of
        # ``end_silence_ms`` on the final's latency. (speech end it was made for, the decode)
        self._early: tuple[int, asyncio.Future[Transcript]] | None = None
        self._lock = asyncio.Lock()
        self._finished = False

    @property
    def received_seconds(self) -> float:
        """Seconds of audio fed so far."""
        return self._received / self.SAMPLE_RATE

    @property
    def pending_decodes(self) -> int:
        """Decodes queued or running for this stream."""
        return self._decodes.pending

    async def feed(self, audio: Audio) -> None:
        """Take the next chunk (1-D float32, any length). Waits for the VAD, and — only when a client
        sends audio faster than it can be transcribed — until at most ``MAX_PENDING_DECODES`` decodes
        are waiting, so the queued utterances' audio cannot grow without bound; raises an earlier
        decode's (or ``emit``'s) error. A no-op once closed."""
        if self._decodes.closed:
            return
        if self._finished:
            raise RuntimeError("feed() after finish()")
        await self._decodes.wait_for_room()
        if self._decodes.closed:
            return
        self._decodes.raise_error()
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError("live audio must be 1-D (mono)")
        async with self._lock:
            self._received += samples.size
            await self._process(np.concatenate([self._carry, samples]))

    async def finish(self) -> None:
        """End of input: close the open utterance, then wait until every decode has run and its
        event was emitted. Raises the first decode or ``emit`` error. A no-op once closed."""
        if self._decodes.closed:
            return
        async with self._lock:
            if not self._finished:
                self._finished = True
                if self._carry.size:
                    # Judge the last few milliseconds too; the zeros only complete the window.
                    tail = np.zeros(self._window - self._carry.size, dtype=np.float32)
                    await self._process(np.concatenate([self._carry, tail]))
                if self._utterance is not None and not self._decodes.closed:
                    self._close_utterance()
            await self._decodes.finish()

    async def aclose(self) -> None:
        """Abandon the stream: cancel pending decodes and emit nothing more (idempotent)."""
        if self._decodes.closed:
            return
        self._drop_early()
        await self._decodes.aclose()

    async def _process(self, samples: Audio) -> None:
        """Score the whole windows of ``samples`` in the pool and step through them."""
        whole = samples.size - samples.size % self._window
        self._carry = samples[whole:].copy()
        if not whole:
            return
        windows = samples[:whole]
        score = functools.partial(self._vad.probabilities, windows)
        probabilities = await self._pool.submit(score, deadline=time.monotonic())
        for i, probability in enumerate(probabilities):
            if self._decodes.closed:
                return
            # Copies, so a kept window does not pin the caller's whole chunk in memory.
            self._step(windows[i * self._window : (i + 1) * self._window].copy(), probability)

    def _step(self, window: Audio, probability: float) -> None:
        start = self._position
        self._position += self._window
        if self._utterance is None:
            if probability >= self._threshold:
                self._open_utterance(start, [*self._preroll, window])
            else:
                self._preroll.append(window)
            return
        self._utterance.append(window)
        if probability >= self._release:
            self._silent, self._speech_end = 0, self._position
            self._drop_early()
        else:
            self._silent += 1
            if self._silent == min(EARLY_FINAL_WINDOWS, self._end_windows - 1):
                self._start_early()
        if self._silent >= self._end_windows:
            self._close_utterance()
        elif self._position - self._offset >= self._max_samples:
            # Whisper hears at most 30 s: cut here and carry on with a new utterance at once.
            self._close_utterance()
            self._open_utterance(self._position, [])
        elif self._silent == 0 and self._decodes.pending == 0 and self._position >= self._next_partial:
            # Only on a speech window: a partial decoded during the closing silence would add no
            # words and hold up the final behind it.
            self._next_partial = self._position + self._partial_samples
            self._enqueue(False, np.concatenate(self._utterance), self._position)

    def _open_utterance(self, speech_start: int, windows: list[Audio]) -> None:
        self._preroll.clear()
        self._utterance = windows
        self._offset = self._position - len(windows) * self._window
        self._speech_start, self._speech_end, self._silent = speech_start, self._position, 0
        self._next_partial = speech_start + self._partial_samples

    def _close_utterance(self) -> None:
        assert self._utterance is not None
        windows, self._utterance = self._utterance, None
        padded_end = min(self._position, self._speech_end + self._pad_windows * self._window)
        keep = (padded_end - self._offset) // self._window
        # The silence after the trailing padding is the next utterance's leading padding.
        self._preroll.extend(windows[keep:])
        early, self._early = self._early, None
        ready = early[1] if early is not None and early[0] == self._speech_end else None
        if early is not None and ready is None:
            discard(early[1])
        if self._speech_end - self._speech_start >= self._min_speech and keep:
            self._enqueue(
                True, np.concatenate(windows[:keep]), min(self._speech_end, self._received), ready=ready
            )
        elif ready is not None:
            discard(ready)

    def _final_audio(self) -> Audio | None:
        """The audio a final of the open utterance would decode now (speech plus trailing padding)."""
        assert self._utterance is not None
        padded_end = min(self._position, self._speech_end + self._pad_windows * self._window)
        keep = (padded_end - self._offset) // self._window
        if self._speech_end - self._speech_start < self._min_speech or not keep:
            return None
        return np.concatenate(self._utterance[:keep])

    def _start_early(self) -> None:
        audio = self._final_audio()
        if audio is None or self._early is not None:
            return
        self._early = (self._speech_end, self._decodes.submit_final(audio))

    def _drop_early(self) -> None:
        if self._early is not None:
            # Speech went on: that decode is of a cut-off utterance. (A running one just finishes.)
            discard(self._early[1])
            self._early = None

    def _enqueue(
        self, final: bool, audio: Audio, end: int, ready: asyncio.Future[Transcript] | None = None
    ) -> None:
        rate = self.SAMPLE_RATE
        self._decodes.enqueue(
            Decode(final, audio, self._offset / rate, self._speech_start / rate, end / rate, ready)
        )

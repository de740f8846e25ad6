"""What realtime ASR reports, and the server-wide budget of partial decodes."""

from __future__ import annotations

from dataclasses import dataclass

from openfish.engines.base import Word


@dataclass(frozen=True)
class PartialTranscript:
    """What has been heard so far of an utterance that is still going on."""

    text: str
    start: float  # seconds from the start of the stream


@dataclass(frozen=True)
class FinalTranscript:
    """One utterance, cut by VAD (or by ``max_utterance_seconds``); times in stream seconds."""

    text: str
    start: float
    end: float
    language: str
    words: list[Word] | None


LiveEvent = PartialTranscript | FinalTranscript


class PartialBudget:
    """A server-wide cap on partial decodes running at once. Partials are a courtesy and finals the
    product: on a busy machine, partials are skipped so that finals find the CPU free."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._running = 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free (event-loop only, so no lock is needed)."""
        if self._running >= self._limit:
            return False
        self._running += 1
        return True

    def release(self) -> None:
        """Give a slot back."""
        self._running = max(0, self._running - 1)

"""What realtime ASR reports, and the server-wide budget of partial decodes."""

from __future__ import annotations

from dataclasses import dataclass

from openfish.engines.base import Word
from openfish.store.counters import Counters, MemoryCounters


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
    """A cap on partial decodes running at once on this machine. Partials are a courtesy and
    finals the product: on a busy machine, partials are skipped so that finals find the CPU free.
    The counters must be this process's own: the budget is of this machine's cores."""

    KEY = "partial-decodes"

    def __init__(self, limit: int, counters: Counters | None = None) -> None:
        self._limit = max(1, limit)
        self._counters = counters or MemoryCounters()

    async def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        return await self._counters.acquire(self.KEY, limit=self._limit)

    async def release(self) -> None:
        """Give a slot back."""
        await self._counters.release(self.KEY)

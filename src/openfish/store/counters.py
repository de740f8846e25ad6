"""The counters contract: sliding-window rates and capped slots, by key.

Request rate and concurrency limits, realtime session caps and the partial-decode budget all count
through it. :class:`MemoryCounters` keeps the counts in this process — exact for the embedded
single-process default; a deployment of several API nodes gives them a shared implementation
(the same contract tests, ``tests/contracts/test_counters.py``), so that a tier's limits hold
across nodes. Budgets of this machine's own CPU (partial decodes) stay on a process-local instance.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Counters(Protocol):
    """Counts shared by everything that limits work."""

    async def hit(self, key: str, *, window_seconds: float, limit: int) -> float | None:
        """Count one event for ``key`` unless ``limit`` events already fall in the last
        ``window_seconds``: None when counted, else the seconds until the oldest leaves the window
        (nothing is counted then)."""
        ...

    async def acquire(self, key: str, *, limit: int) -> bool:
        """Take one of ``limit`` slots of ``key``; False, taking nothing, when all are taken."""
        ...

    async def release(self, key: str) -> None:
        """Give back a slot of ``key`` (never below zero)."""
        ...

    async def held(self, key: str) -> int:
        """Slots of ``key`` now taken."""
        ...


class MemoryCounters:
    """The contract in this process. No method awaits, so each is atomic on the event loop."""

    #: Every this many hits, keys whose events have all left their window are forgotten.
    SWEEP_EVERY = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._events: dict[str, tuple[float, deque[float]]] = {}
        self._slots: dict[str, int] = {}
        self._hits = 0

    async def hit(self, key: str, *, window_seconds: float, limit: int) -> float | None:
        now = self._clock()
        self._hits += 1
        if self._hits % self.SWEEP_EVERY == 0:
            self._forget_idle(now)
        events = self._events.setdefault(key, (window_seconds, deque()))[1]
        while events and events[0] <= now - window_seconds:
            events.popleft()
        if len(events) >= limit:
            return events[0] + window_seconds - now if events else window_seconds
        events.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        idle = [
            key for key, (window, events) in self._events.items() if not events or events[-1] <= now - window
        ]
        for key in idle:
            del self._events[key]

    async def acquire(self, key: str, *, limit: int) -> bool:
        taken = self._slots.get(key, 0)
        if taken >= limit:
            return False
        self._slots[key] = taken + 1
        return True

    async def release(self, key: str) -> None:
        taken = self._slots.get(key, 0) - 1
        if taken > 0:
            self._slots[key] = taken
        else:
            self._slots.pop(key, None)  # idle keys take no memory

    async def held(self, key: str) -> int:
        return self._slots.get(key, 0)

"""Per-account request limits: a sliding one-minute window and a cap on requests in flight.

In-process state: exact for one server process (the embedded default). A deployment with several
API processes divides each tier's numbers among them or moves this state to the shared store.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from openfish.config import TierSettings
from openfish.errors import RateLimited

WINDOW_SECONDS = 60.0


@dataclass
class _AccountState:
    started: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class RequestLimiter:
    """Admits or refuses a request for an account, before any work is done for it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._accounts: dict[str, _AccountState] = {}

    def acquire(self, account_id: str, tier: TierSettings) -> None:
        """Count a request in, or raise RateLimited with the seconds to wait.

        Runs without awaiting, so on the event loop it is atomic without a lock.
        """
        now = self._clock()
        state = self._accounts.setdefault(account_id, _AccountState())
        while state.started and state.started[0] <= now - WINDOW_SECONDS:
            state.started.popleft()
        if len(state.started) >= tier.requests_per_minute:
            wait = state.started[0] + WINDOW_SECONDS - now
            raise RateLimited(
                f"more than {tier.requests_per_minute} requests per minute",
                retry_after=math.ceil(wait),
            )
        if state.in_flight >= tier.max_concurrent_requests:
            raise RateLimited(f"more than {tier.max_concurrent_requests} requests at once", retry_after=1)
        state.started.append(now)
        state.in_flight += 1

    def release(self, account_id: str) -> None:
        """Count a finished request out."""
        state = self._accounts.get(account_id)
        if state is None:
            return
        state.in_flight = max(0, state.in_flight - 1)
        if state.in_flight == 0 and not state.started:
            del self._accounts[account_id]

    def in_flight(self, account_id: str) -> int:
        """Requests of the account now being served."""
        state = self._accounts.get(account_id)
        return state.in_flight if state else 0

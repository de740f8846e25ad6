"""Per-account request limits: a sliding one-minute window and a cap on requests in flight.

The counts live behind the :class:`~openfish.store.counters.Counters` contract: in this process by
default (exact for the single-process embedded server), shared when several API nodes serve one
deployment.
"""

from __future__ import annotations

import math

from openfish.config import TierSettings
from openfish.errors import RateLimited
from openfish.store.counters import Counters

WINDOW_SECONDS = 60.0


class RequestLimiter:
    """Admits or refuses a request for an account, before any work is done for it."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    async def acquire(self, account_id: str, tier: TierSettings) -> None:
        """Count a request in, or raise RateLimited with the seconds to wait (counting nothing)."""
        if not await self._counters.acquire(_in_flight(account_id), limit=tier.max_concurrent_requests):
            raise RateLimited(f"more than {tier.max_concurrent_requests} requests at once", retry_after=1)
        wait = await self._counters.hit(
            _per_minute(account_id), window_seconds=WINDOW_SECONDS, limit=tier.requests_per_minute
        )
        if wait is not None:
            await self._counters.release(_in_flight(account_id))
            raise RateLimited(
                f"more than {tier.requests_per_minute} requests per minute", retry_after=math.ceil(wait)
            )

    async def release(self, account_id: str) -> None:
        """Count a finished request out."""
        await self._counters.release(_in_flight(account_id))

    async def in_flight(self, account_id: str) -> int:
        """Requests of the account now being served."""
        return await self._counters.held(_in_flight(account_id))


def _in_flight(account_id: str) -> str:
    return f"requests-in-flight:{account_id}"


def _per_minute(account_id: str) -> str:
    return f"requests-per-minute:{account_id}"

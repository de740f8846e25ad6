"""Request limits: the sliding window forgets requests older than a minute, concurrency slots are
given back, and a refused request counts toward neither."""

from __future__ import annotations

import pytest

from openfish.config import TierSettings
from openfish.errors import RateLimited
from openfish.services.accounts.limits import RequestLimiter
from openfish.store.counters import MemoryCounters


async def test_window_slides_and_retry_after_counts_down() -> None:
    now = [1000.0]
    limiter = RequestLimiter(MemoryCounters(clock=lambda: now[0]))
    tier = TierSettings(requests_per_minute=2, max_concurrent_requests=10)
    await limiter.acquire("a", tier)
    now[0] += 20
    await limiter.acquire("a", tier)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("a", tier)
    assert refused.value.retry_after == 40
    assert await limiter.in_flight("a") == 2  # the refused request holds no slot
    now[0] += 40
    await limiter.acquire("a", tier)  # the first request has left the window
    assert await limiter.in_flight("a") == 3


async def test_release_frees_a_concurrency_slot() -> None:
    limiter = RequestLimiter(MemoryCounters())
    tier = TierSettings(requests_per_minute=100, max_concurrent_requests=1)
    await limiter.acquire("a", tier)
    with pytest.raises(RateLimited):
        await limiter.acquire("a", tier)
    await limiter.release("a")
    await limiter.acquire("a", tier)
    await limiter.release("a")
    await limiter.release("a")  # an extra release never goes below zero
    assert await limiter.in_flight("a") == 0


async def test_a_request_refused_for_concurrency_is_not_counted_per_minute() -> None:
    limiter = RequestLimiter(MemoryCounters())
    tier = TierSettings(requests_per_minute=2, max_concurrent_requests=1)
    await limiter.acquire("a", tier)
    for _ in range(5):
        with pytest.raises(RateLimited):
            await limiter.acquire("a", tier)
    await limiter.release("a")
    await limiter.acquire("a", tier)  # the second of two per minute: the refusals did not count

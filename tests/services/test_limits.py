"""The sliding window forgets requests older than a minute."""

from __future__ import annotations

import pytest

from openfish.config import TierSettings
from openfish.errors import RateLimited
from openfish.services.limits import RequestLimiter


def test_window_slides_and_retry_after_counts_down() -> None:
    now = [1000.0]
    limiter = RequestLimiter(clock=lambda: now[0])
    tier = TierSettings(requests_per_minute=2, max_concurrent_requests=10)
    limiter.acquire("a", tier)
    now[0] += 20
    limiter.acquire("a", tier)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("a", tier)
    assert refused.value.retry_after == 40
    now[0] += 40
    limiter.acquire("a", tier)  # the first request has left the window
    assert limiter.in_flight("a") == 3


def test_release_frees_a_concurrency_slot() -> None:
    limiter = RequestLimiter()
    tier = TierSettings(requests_per_minute=100, max_concurrent_requests=1)
    limiter.acquire("a", tier)
    with pytest.raises(RateLimited):
        limiter.acquire("a", tier)
    limiter.release("a")
    limiter.acquire("a", tier)
    limiter.release("a")
    limiter.release("a")  # an extra release never goes below zero
    assert limiter.in_flight("a") == 0

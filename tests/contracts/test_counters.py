"""The counters contract (``openfish.store.counters.Counters``), run against every back-end."""

from __future__ import annotations

import asyncio

from openfish.store.counters import Counters
from tests.contracts.conftest import CountersFactory


async def test_a_window_admits_its_limit_then_says_how_long_to_wait(make_counters: CountersFactory) -> None:
    now = [100.0]
    counters = make_counters(lambda: now[0])
    assert await counters.hit("k", window_seconds=10, limit=2) is None
    now[0] += 4
    assert await counters.hit("k", window_seconds=10, limit=2) is None
    assert await counters.hit("k", window_seconds=10, limit=2) == 6.0
    assert await counters.hit("other", window_seconds=10, limit=2) is None  # keys are independent
    now[0] += 6
    assert await counters.hit("k", window_seconds=10, limit=2) is None  # the first left the window
    assert await counters.hit("k", window_seconds=10, limit=2) == 4.0  # refusals are not counted


async def test_slots_are_capped_and_given_back(make_counters: CountersFactory) -> None:
    counters: Counters = make_counters(lambda: 0.0)
    assert await counters.acquire("s", limit=2)
    assert await counters.acquire("s", limit=2)
    assert not await counters.acquire("s", limit=2)
    assert await counters.held("s") == 2
    await counters.release("s")
    assert await counters.acquire("s", limit=2)
    for _ in range(4):
        await counters.release("s")  # more releases than slots never go below zero
    assert await counters.held("s") == 0
    assert await counters.acquire("s", limit=1)


async def test_concurrent_takers_never_exceed_the_limit(make_counters: CountersFactory) -> None:
    counters = make_counters(lambda: 0.0)
    taken = await asyncio.gather(*(counters.acquire("race", limit=5) for _ in range(40)))
    assert sum(taken) == 5
    admitted = await asyncio.gather(*(counters.hit("burst", window_seconds=60, limit=7) for _ in range(40)))
    assert sum(wait is None for wait in admitted) == 7

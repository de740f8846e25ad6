"""The database counters as several nodes see them: two instances, each with its own engine (so its
own connections, as two processes have), on each database back-end's one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from openfish.store.database import Database
from openfish.store.sql_counters import SLOT_MARGIN_SECONDS, SqlCounters
from tests.conftest import Harness
from tests.contracts.conftest import SLOT_HOLD_SECONDS

#: Builds one more node's counters on the shared database, reading time from the given clock.
NodeFactory = Callable[[Callable[[], float]], SqlCounters]


@pytest.fixture
async def make_node(harness: Harness) -> AsyncIterator[NodeFactory]:
    """Counters of a new node on the harness's database (its own engine), disposed afterwards."""
    engines: list[Database] = []

    def build(clock: Callable[[], float]) -> SqlCounters:
        db = Database(harness.services.db.url)
        engines.append(db)
        return SqlCounters(db, hold_seconds=SLOT_HOLD_SECONDS, clock=clock)

    yield build
    for db in engines:
        await db.dispose()


async def test_two_nodes_racing_for_slots_never_exceed_the_limit(make_node: NodeFactory) -> None:
    first, second = make_node(lambda: 0.0), make_node(lambda: 0.0)
    assert await first.acquire("race", limit=5)  # so that ``first`` surely holds one to give back
    takers = [node.acquire("race", limit=5) for node in (first, second) for _ in range(10)]
    taken = await asyncio.gather(*takers)
    assert sum(taken) == 4
    assert await first.held("race") == await second.held("race") == 5
    await first.release("race")
    assert await second.acquire("race", limit=5)  # a slot given back on one node is free on the other
    assert not await first.acquire("race", limit=5)


async def test_two_nodes_share_one_window(make_node: NodeFactory) -> None:
    now = [1000.0]
    first, second = make_node(lambda: now[0]), make_node(lambda: now[0])
    admitted = await asyncio.gather(
        *(node.hit("window", window_seconds=60, limit=7) for node in (first, second) for _ in range(10))
    )
    assert sum(wait is None for wait in admitted) == 7
    assert {wait for wait in admitted if wait is not None} == {60.0}
    now[0] += 60
    assert await second.hit("window", window_seconds=60, limit=7) is None  # all seven left together


async def test_a_dead_nodes_slots_free_themselves_when_they_expire(make_node: NodeFactory) -> None:
    now = [1000.0]
    dead, alive = make_node(lambda: now[0]), make_node(lambda: now[0])
    assert await dead.acquire("sessions", limit=1)  # ... and its node never gives it back
    expiry = SLOT_HOLD_SECONDS + SLOT_MARGIN_SECONDS
    now[0] += expiry - 1
    assert not await alive.acquire("sessions", limit=1)
    assert await alive.held("sessions") == 1
    now[0] += 1
    assert await alive.held("sessions") == 0
    assert await alive.acquire("sessions", limit=1)
    await dead.release("sessions")  # a late release of the expired slot takes nothing from the new one
    assert await alive.held("sessions") == 1


async def test_releases_never_take_another_nodes_slot(make_node: NodeFactory) -> None:
    first, second = make_node(lambda: 0.0), make_node(lambda: 0.0)
    assert await first.acquire("s", limit=2)
    await second.release("s")  # holds nothing of "s"
    assert await first.held("s") == 1

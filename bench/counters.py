"""What limits cost: ``MemoryCounters`` against ``SqlCounters`` on SQLite and on PostgreSQL.

Run: ``.venv/bin/python -m bench.counters``. Prints, side by side in one run, for each back-end:
the median and p95 microseconds of one ``hit``, of one ``acquire`` + ``release``, and of one
request's admission as ``RequestLimiter`` does it (acquire, hit, release), over ``CALLS``
sequential calls each; and calls per second with ``CALLERS`` concurrent callers, each on a key
of its own (as many accounts) and all on one key (one busy account: per-key serialisation).

SQLite is a file in a temporary directory (WAL, as the server runs it). PostgreSQL is
``OPENFISH_TEST_POSTGRES_URL`` when set, else a throwaway local cluster (``tests/postgres.py``,
which runs with ``fsync=off``: commits cost less than on a durable server).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.postgres import fresh_database, postgres_server

from openfish.config import TierSettings
from openfish.services.accounts.limits import RequestLimiter
from openfish.store.counters import Counters, MemoryCounters
from openfish.store.database import Database
from openfish.store.sql_counters import SqlCounters

CALLS = 500
CALLERS = 20
CALLS_PER_CALLER = 50
#: Limits no call reaches: every call is admitted, so each measures the full path.
WINDOW_SECONDS, NO_LIMIT = 60.0, 10**9
TIER = TierSettings(requests_per_minute=NO_LIMIT, max_concurrent_requests=NO_LIMIT)
#: Figures, in the order printed.
ROWS = (
    "hit: median / p95 µs",
    "acquire + release: median / p95 µs",
    "request admission: median / p95 µs",
    f"hits/s, {CALLERS} callers, own keys",
    f"acquire + release/s, {CALLERS} callers, own keys",
    f"hits/s, {CALLERS} callers, one key",
)


async def timed(call: Callable[[], Awaitable[object]]) -> str:
    """Median / p95 microseconds of ``CALLS`` sequential calls."""
    took = []
    for _ in range(CALLS):
        start = time.perf_counter()
        await call()
        took.append((time.perf_counter() - start) * 1e6)
    p95 = statistics.quantiles(took, n=20)[-1]
    return f"{statistics.median(took):.0f} / {p95:.0f}"


async def rate(call: Callable[[int], Awaitable[object]]) -> str:
    """Calls per second of ``CALLERS`` concurrent callers (the number of each is passed)."""

    async def caller(number: int) -> None:
        for _ in range(CALLS_PER_CALLER):
            await call(number)

    start = time.perf_counter()
    await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    return f"{CALLERS * CALLS_PER_CALLER / (time.perf_counter() - start):.0f}"


async def measure(counters: Counters) -> list[str]:
    """Every figure of ``ROWS`` for one back-end."""

    async def hit(key: str) -> None:
        await counters.hit(key, window_seconds=WINDOW_SECONDS, limit=NO_LIMIT)

    async def take_and_give_back(key: str) -> None:
        await counters.acquire(key, limit=NO_LIMIT)
        await counters.release(key)

    async def admit() -> None:
        await limiter.acquire("account", TIER)
        await limiter.release("account")

    limiter = RequestLimiter(counters)
    await hit("warm-up")  # the first call of a SqlCounters sweeps; connections open
    return [
        await timed(lambda: hit("seq")),
        await timed(lambda: take_and_give_back("seq")),
        await timed(admit),
        await rate(lambda number: hit(f"own-{number}")),
        await rate(lambda number: take_and_give_back(f"own-{number}")),
        await rate(lambda _number: hit("shared")),
    ]


async def on_database(url: str) -> list[str]:
    """The figures of ``SqlCounters`` on a migrated database at ``url``."""
    db = Database(url)
    try:
        await db.migrate()
        return await measure(SqlCounters(db, hold_seconds=3600))
    finally:
        await db.dispose()


async def main() -> None:
    columns = {"memory": await measure(MemoryCounters())}
    with tempfile.TemporaryDirectory() as tmp:
        columns["sql, SQLite"] = await on_database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
    with postgres_server() as server:
        columns["sql, PostgreSQL"] = await on_database(fresh_database(server))
    print(f"{CALLS} sequential calls per latency; {CALLERS} x {CALLS_PER_CALLER} calls per rate\n")
    print("| figure | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for index, row in enumerate(ROWS):
        print(f"| {row} | " + " | ".join(figures[index] for figures in columns.values()) + " |")


if __name__ == "__main__":
    asyncio.run(main())

"""The measurements of :mod:`bench.cluster`: ledger charges, job submissions and blob transfers, each
on one back-end at a time (the caller runs them on both and prints them side by side)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, func, select, text

from openfish.config import (
    AsrSettings,
    BootstrapSettings,
    DatabaseSettings,
    JobSettings,
    Settings,
    TierSettings,
    TtsSettings,
)
from openfish.container import Services, build_services
from openfish.services.tts.planner import TtsRequest
from openfish.store.blobs import BlobStore
from openfish.store.models import Account

#: Limits nothing here reaches (billing never rate-limits; no monthly quota).
UNLIMITED = TierSettings(
    requests_per_minute=10**6, max_concurrent_requests=10**6, max_realtime_sessions=10**3, monthly_quota=None
)
TIER = "pro"
#: Credits each account starts with: far more than any figure spends.
CREDITS = 10**9
#: Short texts for job submissions (a job's price is its length in credits).
TEXTS = (
    "The quick brown fox jumps over a dog.",
    "Please leave the parcel at the front door.",
    "Our next train departs from platform four.",
    "The meeting has been moved to Thursday.",
)


@dataclass(frozen=True)
class Counts:
    """How much each figure does (``FULL`` is the benchmark, ``SMOKE`` proves it runs)."""

    callers: int  # concurrent ledger callers, and accounts in the many-accounts figure
    charges_per_caller: int
    sequential_submits: int
    burst: int
    submitters: int
    small_blobs: int
    large_blobs: int
    blob_threads: int


FULL = Counts(300, 3, 50, 200, 32, 200, 10, 8)
SMOKE = Counts(6, 2, 4, 8, 3, 4, 2, 8)
SMALL_BLOB, LARGE_BLOB = 64 * 1024, 4 * 1024 * 1024


def settings_for(data_dir: Path, database_url: str | None, queue: str | None = None) -> Settings:
    """A node with no bootstrap account, no worker, no model preloading and no limits in the way
    (``database_url`` None: SQLite in ``data_dir``; ``queue``: the job queue, None its default)."""
    return Settings(
        data_dir=data_dir,
        bootstrap=BootstrapSettings(enabled=False),
        database=DatabaseSettings(url=database_url),
        jobs=JobSettings(embedded_worker=False, queue=queue),
        tts=TtsSettings(preload=False),
        asr=AsrSettings(preload=False),
        tiers={TIER: UNLIMITED},
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Services]:
    """The service graph of an API node (migrated, pool started), stopped after the block."""
    services = build_services(settings)
    await services.start(worker=False)
    try:
        yield services
    finally:
        await services.stop()


async def new_accounts(services: Services, count: int, name: str) -> list[str]:
    """The ids of ``count`` new accounts, each with ``CREDITS``."""
    return [
        (await services.accounts.create_account(f"{name}-{number}", TIER, CREDITS)).id
        for number in range(count)
    ]


async def total_credits(services: Services, account_ids: Sequence[str]) -> int:
    """The balances of the accounts, summed."""
    async with services.db.session() as session:
        total = await session.scalar(select(func.sum(Account.credits)).where(Account.id.in_(account_ids)))
    return int(total or 0)


@dataclass(frozen=True)
class Charges:
    """A ledger figure: charges per second, whether the balances moved by exactly that many, and
    what one charge cost: SQL statements (besides begin and commit), CPU milliseconds of this
    process (the node: event loop, SQLAlchemy, driver; on SQLite the database too) and of the
    database server's processes (None: not measured, SQLite or a server not on this machine)."""

    per_second: float
    exact: bool
    statements: float
    process_ms: float
    server_ms: float | None


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of process ``pid``, with those of its ended children if asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children waited for
    return ticks / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _server_clock(backend: int) -> Callable[[], float] | None:
    """A reading of the CPU seconds spent so far by the PostgreSQL server that runs ``backend`` —
    its postmaster, the postmaster's live processes and its ended ones; None when that server's
    processes are not on this machine."""
    try:
        if not Path(f"/proc/{backend}/comm").read_text().startswith("postgres"):
            return None  # a process of that number here is not the server's (a remote server)
        postmaster = _parent(backend)
    except OSError:
        return None

    def reading() -> float:
        total = _cpu_seconds(postmaster, children=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    if _parent(int(entry.name)) == postmaster:
                        total += _cpu_seconds(int(entry.name))
        return total

    return reading


async def server_clock(services: Services) -> Callable[[], float] | None:
    """The CPU clock of the PostgreSQL server this node uses (see ``_server_clock``); None on SQLite."""
    if services.db.is_sqlite:
        return None
    async with services.db.session() as session:
        backend = await session.scalar(text("SELECT pg_backend_pid()"))
    return _server_clock(int(backend or 0))


async def charges(
    services: Services, account_ids: Sequence[str], callers: int, per_caller: int, tag: str
) -> Charges:
    """``callers`` concurrent callers, caller ``n`` charging 1 credit ``per_caller`` times to
    account ``n`` modulo the accounts, each charge under a reference of its own."""
    total = callers * per_caller
    before = await total_credits(services, account_ids)
    server = await server_clock(services)
    statements = 0

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal statements
        statements += not statement.lstrip().upper().startswith(("BEGIN", "COMMIT"))

    async def caller(number: int) -> None:
        account = account_ids[number % len(account_ids)]
        for step in range(per_caller):
            await services.billing.charge(account, 1, reference=f"{tag}-{number}-{step}", surface="bench")

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    server_start = server() if server else 0.0
    cpu_start, start = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(caller(number) for number in range(callers)))
    finally:
        took, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        server_cpu = server() - server_start if server else None
        event.remove(engine, "before_cursor_execute", count)
    moved = before - await total_credits(services, account_ids)
    return Charges(
        total / took,
        moved == total,
        statements / total,
        cpu * 1000 / total,
        None if server_cpu is None else server_cpu * 1000 / total,
    )


async def ledger(services: Services, counts: Counts) -> tuple[Charges, Charges]:
    """Charges on one account, then on ``counts.callers`` accounts (one per caller)."""
    one = await new_accounts(services, 1, "one")
    many = await new_accounts(services, counts.callers, "many")
    # Untimed: opens the pool's connections and warms every statement (psycopg prepares a
    # statement on a connection after its fifth run there).
    await charges(services, many, counts.callers, 1, "warm")
    per_caller = counts.charges_per_caller
    return (
        await charges(services, one, counts.callers, per_caller, "one"),
        await charges(services, many, counts.callers, per_caller, "many"),
    )


@dataclass(frozen=True)
class Submits:
    """Job submission figures: sequential latencies (seconds) and a burst's submits per second."""

    latencies: list[float]
    burst_per_second: float

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]


async def submits(services: Services, counts: Counts) -> Submits:
    """``sequential_submits`` TTS jobs one after another on one account, then ``burst`` jobs
    by ``submitters`` concurrent submitters, each on an account of its own."""
    solo = (await new_accounts(services, 1, "solo"))[0]
    crowd = await new_accounts(services, counts.submitters, "crowd")

    async def submit(account_id: str, number: int) -> None:
        text = TEXTS[number % len(TEXTS)]
        await services.tts_jobs.submit(account_id, TtsRequest(text=text, format="wav"))

    await submit(solo, 0)  # untimed: the engine registry plans (and may load) on first use
    latencies = []
    for number in range(counts.sequential_submits):
        start = time.perf_counter()
        await submit(solo, number)
        latencies.append(time.perf_counter() - start)

    pending = iter(range(counts.burst))  # shared: each submitter takes the next job number

    async def submitter(account_id: str) -> None:
        for number in pending:
            await submit(account_id, number)

    start = time.perf_counter()
    await asyncio.gather(*(submitter(account) for account in crowd))
    return Submits(latencies, counts.burst / (time.perf_counter() - start))


@dataclass(frozen=True)
class Transfer:
    """One size's put and get figures: operations and megabytes (10^6 bytes) per second."""

    put_ops: float
    put_mb: float
    get_ops: float
    get_mb: float
    exact: bool  # every get returned the bytes put


def transfer(store: BlobStore, count: int, size: int, threads: int) -> Transfer:
    """``count`` blobs of ``size`` bytes put, then got, through ``threads`` threads."""
    payload = os.urandom(size)
    keys = [f"bench/s{size}-{number:06d}.bin" for number in range(count)]
    store.put("bench/warm-up-0.bin", b"warm")  # untimed: connections, directories
    store.get("bench/warm-up-0.bin")

    def timed(work: Callable[[str], bool]) -> tuple[float, bool]:
        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter()
            correct = all(pool.map(work, keys))
            return time.perf_counter() - start, correct

    def put(key: str) -> bool:
        store.put(key, payload)
        return True

    put_seconds, _ = timed(put)
    get_seconds, exact = timed(lambda key: store.get(key) == payload)
    megabytes = count * size / 1e6
    return Transfer(
        count / put_seconds, megabytes / put_seconds, count / get_seconds, megabytes / get_seconds, exact
    )


def blobs(store: BlobStore, counts: Counts) -> tuple[Transfer, Transfer]:
    """Small (64 KiB) and large (4 MiB) blobs through ``store``."""
    return (
        transfer(store, counts.small_blobs, SMALL_BLOB, counts.blob_threads),
        transfer(store, counts.large_blobs, LARGE_BLOB, counts.blob_threads),
    )

"""Scale-out back-ends against the embedded ones: the ledger and job submission on SQLite vs
PostgreSQL, blobs in a local directory vs an S3-compatible bucket.

Run: ``.venv/bin/python -m bench.cluster`` (``--smoke`` shrinks every count to a few iterations:
it proves the benchmark runs, its figures mean nothing; ``--ledger`` runs section 1 only). Prints,
side by side in one run, a table per section with a column per back-end and their ratio (second /
first: above 1 the second is faster for rates, slower for latencies):

1. **Ledger**: charges per second through ``BillingService.charge``, 1 credit each under a
   reference of its own, by 300 concurrent asyncio callers (3 charges each) against (a) one account
   (every charge waits for the same row: per-account serialisation) and (b) 300 accounts (one per
   caller), and whether the balances moved by exactly the number of charges ("exact"). What one
   charge cost: SQL statements besides begin and commit, CPU milliseconds of this process (the
   node: event loop, SQLAlchemy, driver — and on SQLite the database itself) and of the PostgreSQL
   server's processes (when they run on this machine), and from those the rate at which one node's
   event loop (one core) and one core of the server would be saturated. Then the issue's reference
   (SQLite ~184/s with 300 concurrent, ``bench/README.md``), the target (≥ 1,000/s on PostgreSQL)
   and the measured PostgreSQL figures against both.
2. **Job submission**: ``TtsJobs.submit`` in-process with no worker running, so only accepting a job
   is measured (plan, then the credit hold and the job row in one transaction): median and p95
   milliseconds of 50 submissions one after another on one account, and submissions per second
   for a burst of 200 by 32 concurrent submitters, each on an account of its own.
3. **Blobs**: put, then get, of 200 x 64 KiB and 10 x 4 MiB blobs through the synchronous
   ``BlobStore`` API in a thread pool of 8: operations and megabytes (10^6 bytes) per second, and
   whether every get returned the bytes put.

Each back-end runs one API node's service graph (``build_services``) with no limits in the way, in
this process; its SQLAlchemy connection pool (SQLite: 5 connections + 10 overflow; PostgreSQL: a
fixed 10, ``POSTGRESQL_POOL_SIZE``) is what the callers share, as on a real node. SQLite is a file
in a temporary directory (WAL, as the server runs it). PostgreSQL is ``OPENFISH_TEST_POSTGRES_URL``
when set, else a throwaway local cluster (``tests/postgres.py``, which runs with ``fsync=off``:
commits cost less than on a durable server). Local blobs are a temporary directory (each put
fsynced); S3 is moto's standalone server (``tests/s3.py``) in a thread of this process, so its own
work competes with the client's for the same interpreter: a real S3 service is slower per request
and faster in aggregate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr
from tests.postgres import URL_VARIABLE, fresh_database, postgres_server
from tests.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, fresh_bucket, s3_server

from bench.cluster_parts import (
    FULL,
    SMOKE,
    Charges,
    Counts,
    Submits,
    Transfer,
    blobs,
    ledger,
    running,
    settings_for,
    submits,
)
from openfish.config import StorageSettings
from openfish.store.blob_backends import build_blob_store

#: The issue's figures: SQLite today (300 concurrent charges, bench/README.md), PostgreSQL's target.
REFERENCE_SQLITE, TARGET_POSTGRESQL = 184.0, 1000.0

Row = tuple[str, str, str, str]
#: The job queues of PostgreSQL, compared in section 2b.
QUEUES = ("database", "procrastinate")
DatabaseFigures = tuple[tuple[Charges, Charges], Submits | None]


def rate_row(label: str, first: float, second: float, digits: int = 0) -> Row:
    return label, f"{first:,.{digits}f}", f"{second:,.{digits}f}", f"{second / first:.2f}"


def flag_row(label: str, first: bool, second: bool) -> Row:
    return label, "yes" if first else "no", "yes" if second else "no", ""


def server_row(label: str, postgresql: float | None) -> Row:
    """A PostgreSQL-only figure (SQLite runs in this process)."""
    return label, "(in process)", "not measured" if postgresql is None else f"{postgresql:.2f}", ""


def table(title: str, columns: tuple[str, str, str], rows: Sequence[Row]) -> None:
    print(f"\n{title}\n")
    print("| figure | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


async def database_figures(counts: Counts, *, with_submits: bool) -> dict[str, DatabaseFigures]:
    """Ledger (and job submission) figures of one node on SQLite, then of one on PostgreSQL."""
    figures: dict[str, DatabaseFigures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with running(settings_for(Path(tmp) / "sqlite", None)) as services:
            figures["SQLite"] = (
                await ledger(services, counts),
                await submits(services, counts) if with_submits else None,
            )
        with postgres_server() as server:
            settings = settings_for(Path(tmp) / "postgresql", fresh_database(server))
            async with running(settings) as services:
                figures["PostgreSQL"] = (
                    await ledger(services, counts),
                    await submits(services, counts) if with_submits else None,
                )
    return figures


async def queue_submits(counts: Counts) -> dict[str, Submits]:
    """Job submission on PostgreSQL by job queue: the jobs table (``jobs.queue=database``) and
    procrastinate, on one server, in two alternating rounds (the first warms the server up; the
    second is reported), so that neither profits from running first or on a fresher server."""
    rounds: dict[str, Submits] = {}
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as server:
        for round_number in range(2):
            for queue in QUEUES:
                directory = Path(tmp) / f"{queue}-{round_number}"
                async with running(settings_for(directory, fresh_database(server), queue=queue)) as services:
                    rounds[queue] = await submits(services, counts)
    return rounds


def blob_figures(counts: Counts) -> dict[str, tuple[Transfer, Transfer]]:
    """Blob figures of a local directory, then of a bucket on moto's S3 server."""
    figures: dict[str, tuple[Transfer, Transfer]] = {}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    with tempfile.TemporaryDirectory() as tmp:
        figures["local"] = blobs(build_blob_store(StorageSettings(), Path(tmp)), counts)
        with s3_server() as endpoint:
            storage = StorageSettings(
                url=f"s3://{fresh_bucket(endpoint)}/blobs",
                endpoint=endpoint,
                region=REGION,
                access_key_id=ACCESS_KEY_ID,
                secret_access_key=SecretStr(SECRET_ACCESS_KEY),
                allow_http=True,
            )
            figures["S3 (moto)"] = blobs(build_blob_store(storage, Path(tmp)), counts)
    return figures


def print_ledger(
    counts: Counts, sqlite: tuple[Charges, Charges], postgresql: tuple[Charges, Charges]
) -> None:
    callers, per_caller = counts.callers, counts.charges_per_caller
    (sqlite_one, sqlite_many), (postgresql_one, postgresql_many) = sqlite, postgresql
    table(
        f"1. Ledger: charges/s, {callers} concurrent callers x {per_caller} charges of 1 credit",
        ("SQLite", "PostgreSQL", "PostgreSQL / SQLite"),
        [
            rate_row("charges/s, one account", sqlite_one.per_second, postgresql_one.per_second),
            flag_row("exact: one account", sqlite_one.exact, postgresql_one.exact),
            rate_row(f"charges/s, {callers} accounts", sqlite_many.per_second, postgresql_many.per_second),
            flag_row(f"exact: {callers} accounts", sqlite_many.exact, postgresql_many.exact),
            rate_row(
                "statements per charge (besides begin, commit)",
                sqlite_many.statements,
                postgresql_many.statements,
                1,
            ),
            rate_row(
                "CPU ms per charge, this process: one account",
                sqlite_one.process_ms,
                postgresql_one.process_ms,
                2,
            ),
            rate_row(
                f"CPU ms per charge, this process: {callers} accounts",
                sqlite_many.process_ms,
                postgresql_many.process_ms,
                2,
            ),
            server_row("CPU ms per charge, PostgreSQL server: one account", postgresql_one.server_ms),
            server_row(
                f"CPU ms per charge, PostgreSQL server: {callers} accounts", postgresql_many.server_ms
            ),
        ],
    )
    print(
        f"\nceilings ({callers} accounts): one node's event loop saturates a core at "
        f"{1000 / sqlite_many.process_ms:,.0f}/s on SQLite (database included), "
        f"{1000 / postgresql_many.process_ms:,.0f}/s on PostgreSQL"
        + (
            f"; the PostgreSQL server at {1000 / postgresql_many.server_ms:,.0f}/s per core it is given"
            if postgresql_many.server_ms
            else ""
        )
    )
    print(
        f"\nreference: SQLite {REFERENCE_SQLITE:.0f}/s (300 concurrent, bench/README.md); target: "
        f"PostgreSQL ≥ {TARGET_POSTGRESQL:,.0f}/s ({TARGET_POSTGRESQL / REFERENCE_SQLITE:.1f}x the reference)"
    )
    for label, figure in (("one account", postgresql_one), (f"{callers} accounts", postgresql_many)):
        met = "met" if figure.per_second >= TARGET_POSTGRESQL else "not met"
        print(
            f"PostgreSQL, {label}: {figure.per_second:,.0f}/s = "
            f"{figure.per_second / REFERENCE_SQLITE:.1f}x the reference; target {met}"
        )


def print_submits(title: str, columns: tuple[str, str, str], first: Submits, second: Submits) -> None:
    """One submission table: latency and burst rate of two set-ups side by side."""
    table(
        title,
        columns,
        [
            rate_row("submit latency, median ms", first.median * 1000, second.median * 1000, 1),
            rate_row("submit latency, p95 ms", first.p95 * 1000, second.p95 * 1000, 1),
            rate_row("burst submits/s", first.burst_per_second, second.burst_per_second),
        ],
    )


def submit_counts(counts: Counts) -> str:
    """What a submission table measured, in words."""
    burst = f"burst of {counts.burst} by {counts.submitters} submitters"
    return f"{counts.sequential_submits} sequential, {burst}"


def print_blobs(counts: Counts, local: tuple[Transfer, Transfer], s3: tuple[Transfer, Transfer]) -> None:
    rows: list[Row] = []
    sizes = (f"{counts.small_blobs} x 64 KiB", f"{counts.large_blobs} x 4 MiB")
    for size, first, second in zip(sizes, local, s3, strict=True):
        rows += [
            rate_row(f"put {size}: ops/s", first.put_ops, second.put_ops),
            rate_row(f"put {size}: MB/s", first.put_mb, second.put_mb, 1),
            rate_row(f"get {size}: ops/s", first.get_ops, second.get_ops),
            rate_row(f"get {size}: MB/s", first.get_mb, second.get_mb, 1),
            flag_row(f"exact: {size} read back", first.exact, second.exact),
        ]
    table(
        f"3. Blobs: put then get, thread pool of {counts.blob_threads}",
        ("local", "S3 (moto)", "S3 / local"),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster", description="Scale-out back-ends against the embedded ones."
    )
    parser.add_argument("--smoke", action="store_true", help="a few iterations of each figure")
    parser.add_argument("--ledger", action="store_true", help="only the ledger figures (section 1)")
    arguments = parser.parse_args()
    counts = SMOKE if arguments.smoke else FULL
    postgresql = URL_VARIABLE if os.environ.get(URL_VARIABLE) else "throwaway local cluster, fsync=off"
    print(
        f"openfish cluster benchmark ({os.cpu_count()} cores; PostgreSQL: {postgresql})"
        + (" — SMOKE RUN, figures meaningless" if counts is SMOKE else "")
    )
    databases = asyncio.run(database_figures(counts, with_submits=not arguments.ledger))
    print_ledger(counts, databases["SQLite"][0], databases["PostgreSQL"][0])
    (_, sqlite_submits), (_, postgresql_submits) = databases["SQLite"], databases["PostgreSQL"]
    if sqlite_submits is None or postgresql_submits is None:
        return
    print_submits(
        f"2. Job submission (TTS, no worker): {submit_counts(counts)}",
        ("SQLite", "PostgreSQL", "PostgreSQL / SQLite"),
        sqlite_submits,
        postgresql_submits,
    )
    queues = asyncio.run(queue_submits(counts))
    print_submits(
        "2b. Job submission on PostgreSQL by job queue (alternating rounds on one server, the second "
        f"reported): {submit_counts(counts)}",
        ("jobs table (polled)", "procrastinate", "procrastinate / polled"),
        queues["database"],
        queues["procrastinate"],
    )
    stores = blob_figures(counts)
    print_blobs(counts, stores["local"], stores["S3 (moto)"])


if __name__ == "__main__":
    main()

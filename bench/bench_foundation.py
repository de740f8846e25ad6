"""Foundation figures: per-request cost of auth + database on a real server, and ledger throughput.

Run: ``.venv/bin/python -m bench.bench_foundation``. Prints latencies of ``/healthz`` (no auth, no
database) and ``/api/open/v1/profile`` (token check + account read) measured side by side against one
server process, and charges per second through the billing service, sequential and concurrent.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.server import free_port, start_server
from openfish.config import Settings
from openfish.container import build_services

REQUESTS = 400
CONCURRENCY = 8
CHARGES = 300


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    return f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"


async def _latencies(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[float]:
    samples: list[float] = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = await client.get(url, headers=headers)
        samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return samples


async def _throughput(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    async def worker() -> None:
        for _ in range(REQUESTS // CONCURRENCY):
            (await client.get(url, headers=headers)).raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - start)


async def _http_figures(base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(20):  # warm up connections and caches
            await client.get("/api/open/v1/profile", headers=auth)
        health = await _latencies(client, "/healthz", {})
        profile = await _latencies(client, "/api/open/v1/profile", auth)
        print(f"GET /healthz              {_percentiles(health)}")
        print(f"GET /api/open/v1/profile  {_percentiles(profile)}")
        ratio = statistics.median(profile) / statistics.median(health)
        print(f"profile / healthz median  {ratio:.2f}x")
        print(
            f"profile throughput, {CONCURRENCY} concurrent clients: "
            f"{await _throughput(client, '/api/open/v1/profile', auth):.0f} req/s"
        )


async def _ledger_figures(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir / "ledger", bootstrap={"enabled": False})
    services = build_services(settings)
    await services.db.migrate()
    try:
        account = await services.accounts.create_account("bench", "pro", CHARGES * 4)
        start = time.perf_counter()
        for i in range(CHARGES):
            await services.billing.charge(account.id, 1, reference=f"seq-{i}", surface="bench")
        sequential = CHARGES / (time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                services.billing.charge(account.id, 1, reference=f"par-{i}", surface="bench")
                for i in range(CHARGES)
            )
        )
        concurrent = CHARGES / (time.perf_counter() - start)
        print(
            f"ledger charges (SQLite, WAL): sequential {sequential:.0f}/s, "
            f"{CHARGES} concurrent {concurrent:.0f}/s"
        )
    finally:
        await services.db.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        server, token = start_server(data_dir / "server", port, data_dir / "serve.log")
        try:
            print(f"openfish foundation benchmark ({os.cpu_count()} cores, {REQUESTS} requests each)")
            asyncio.run(_http_figures(f"http://127.0.0.1:{port}", token))
        finally:
            server.terminate()
            server.wait(timeout=15)
        asyncio.run(_ledger_figures(data_dir))


if __name__ == "__main__":
    main()

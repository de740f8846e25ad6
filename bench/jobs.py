"""Async TTS jobs: queue latency at idle, burst throughput, and the queue's own cost per job.

Run: ``.venv/bin/python -m bench.jobs``. One real ``openfish serve`` (embedded worker on, default
worker settings), short texts as WAV so encoding is negligible. Prints (a) at idle, one job at a time:
time from the POST's answer to the job's ``startedAt`` and to ``succeeded`` being visible to a
client polling every 10 ms; (b) jobs per second for a burst of ``BURST`` jobs submitted at once,
against raw Piper running the same texts in as many threads as there are cores; (c) where the time
of one job goes — raw Piper on the same text vs the worker's run (``startedAt`` → ``finishedAt``) vs
end to end — and the queue's overhead per job (claim, bookkeeping, settlement, polling).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.server import free_port, start_server
from openfish.config import JobSettings
from openfish.engines.base import SynthesisOptions
from openfish.engines.piper import PiperEngine

SENTENCES = [
    "The quick brown fox jumps over a dog.",
    "Please leave the parcel at the front door.",
    "Our next train departs from platform four.",
    "The meeting has been moved to Thursday.",
    "Turn left at the second traffic light.",
    "Your order is ready for collection now.",
    "It will be cloudy with a chance of rain.",
    "Remember to water the plants on Sunday.",
    "The library closes at eight this evening.",
    "Thank you for calling, please hold on.",
]
IDLE_JOBS = 20
BURST = 100
BURST_CONCURRENCY = 16
POLL_SECONDS = 0.01
VOICE = "en_US-joe-medium"
FORMAT = "wav"


@dataclass(frozen=True)
class IdleJob:
    """Timings of one job run alone, in seconds."""

    text: str
    raw: float  # raw Piper on the same text, measured just before the job
    submit: float  # POST sent → 202 received
    to_started: float  # 202 received → startedAt (server clock, same host)
    to_visible: float  # 202 received → a GET shows succeeded
    queued: float  # createdAt → startedAt
    running: float  # startedAt → finishedAt
    after_finish: float  # finishedAt → a GET shows succeeded


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def raw_seconds(engine: PiperEngine, text: str) -> float:
    """Raw Piper: seconds to synthesize all of ``text`` in this thread."""
    options = SynthesisOptions(voice=VOICE)
    start = time.perf_counter()
    for _chunk in engine.synthesize(text, options):
        pass
    return time.perf_counter() - start


def raw_jobs_per_second(engine: PiperEngine, texts: Sequence[str], threads: int) -> float:
    """Raw Piper working through ``texts`` in ``threads`` threads: texts per wall second."""
    pending = list(texts)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                text = pending.pop()
            raw_seconds(engine, text)

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(texts) / (time.perf_counter() - start)


async def submit(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> dict[str, Any]:
    response = await client.post(
        "/api/open/v1/speech/tts/jobs", headers=headers, json={"text": text, "format": FORMAT}
    )
    if response.status_code != 202:
        raise RuntimeError(f"submission refused: {response.status_code} {response.text}")
    job: dict[str, Any] = response.json()
    return job


async def wait_succeeded(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await client.get(f"/api/open/v1/speech/tts/jobs/{job_id}", headers=headers)
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        if job["status"] == "succeeded":
            return job
        if job["status"] in ("failed", "canceled"):
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"job {job_id} did not finish")


async def idle_jobs(client: httpx.AsyncClient, headers: dict[str, str], engine: PiperEngine) -> list[IdleJob]:
    """``IDLE_JOBS`` jobs, each submitted once the previous one has succeeded, each right after raw
    Piper spoke the same text (so both see the same load on a shared machine)."""
    results: list[IdleJob] = []
    await wait_succeeded(client, headers, (await submit(client, headers, "Warm up."))["id"])
    for index in range(IDLE_JOBS):
        text = SENTENCES[index % len(SENTENCES)]
        raw = raw_seconds(engine, text)
        await asyncio.sleep(0.3)  # let the worker settle back into its idle poll
        sent = time.time()
        job = await submit(client, headers, text)
        answered = time.time()
        done = await wait_succeeded(client, headers, job["id"])
        visible = time.time()
        started, finished = _stamp(done["startedAt"]), _stamp(done["finishedAt"])
        results.append(
            IdleJob(
                text=text,
                raw=raw,
                submit=answered - sent,
                to_started=started - answered,
                to_visible=visible - answered,
                queued=started - _stamp(done["createdAt"]),
                running=finished - started,
                after_finish=visible - finished,
            )
        )
    return results


@dataclass(frozen=True)
class BurstResult:
    """A burst's timings, in seconds."""

    wall: float  # first POST sent → every job visible as succeeded
    span: float  # first createdAt → last finishedAt (server clock)
    running_span: float  # first startedAt → last finishedAt
    busy: float  # sum of startedAt → finishedAt over the jobs


async def burst(client: httpx.AsyncClient, headers: dict[str, str], texts: Sequence[str]) -> BurstResult:
    """All ``texts`` submitted at once, then polled until every job has succeeded."""
    gate = asyncio.Semaphore(BURST_CONCURRENCY)

    async def one(text: str) -> str:
        async with gate:
            job_id: str = (await submit(client, headers, text))["id"]
            return job_id

    start = time.time()
    ids = await asyncio.gather(*(one(text) for text in texts))
    remaining = set(ids)
    while remaining:
        page = await client.get(
            "/api/open/v1/speech/tts/jobs", headers=headers, params={"status": "succeeded", "limit": 100}
        )
        page.raise_for_status()
        remaining -= {item["id"] for item in page.json()["items"]}
        if remaining:
            await asyncio.sleep(0.05)
    wall = time.time() - start
    jobs = [(await client.get(f"/api/open/v1/speech/tts/jobs/{i}", headers=headers)).json() for i in ids]
    last = max(_stamp(j["finishedAt"]) for j in jobs)
    return BurstResult(
        wall=wall,
        span=last - min(_stamp(j["createdAt"]) for j in jobs),
        running_span=last - min(_stamp(j["startedAt"]) for j in jobs),
        busy=sum(_stamp(j["finishedAt"]) - _stamp(j["startedAt"]) for j in jobs),
    )


def _ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms"


def _p90(values: Sequence[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000:6.0f} ms"


async def run(base: str, token: str, engine: PiperEngine) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    cores = os.cpu_count() or 1
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        raw_seconds(engine, "Warm up.")
        idle = await idle_jobs(client, headers, engine)

        print(f"\n(a) one job at a time, {IDLE_JOBS} jobs, client polling every {POLL_SECONDS * 1000:.0f} ms")
        print(f"{'step':<44} {'p50':>11} {'p90':>9}")
        rows: list[tuple[str, list[float]]] = [
            ("POST → 202", [job.submit for job in idle]),
            ("202 → startedAt (claimed)", [job.to_started for job in idle]),
            ("202 → succeeded visible", [job.to_visible for job in idle]),
        ]
        for label, values in rows:
            print(f"{label:<44} {_ms(values)} {_p90(values)}")

        burst_texts = [SENTENCES[i % len(SENTENCES)] for i in range(BURST)]
        raw_before = raw_jobs_per_second(engine, burst_texts, cores)
        result = await burst(client, headers, burst_texts)
        raw_rate = (raw_before + raw_jobs_per_second(engine, burst_texts, cores)) / 2
        rate, span = BURST / result.wall, result.span
        slots = JobSettings().worker_concurrency
        idle_slots = slots * result.running_span - result.busy
        print(f"\n(b) burst of {BURST} short jobs ({BURST_CONCURRENCY} submitting at once)")
        print(f"{'':<44} {'jobs/s':>8} {'vs raw':>7}")
        print(f"{f'raw Piper, {cores} threads (before/after mean)':<44} {raw_rate:>8.2f} {1.0:>7.2f}")
        print(f"{'jobs: first POST → all visible succeeded':<44} {rate:>8.2f} {rate / raw_rate:>7.2f}")
        print(
            f"{'jobs: first createdAt → last finishedAt':<44} {BURST / span:>8.2f} "
            f"{BURST / span / raw_rate:>7.2f}"
        )
        print(
            f"machine time per job: raw {1000 / raw_rate:.0f} ms, jobs {1000 / rate:.0f} ms, "
            f"overhead {1000 / rate - 1000 / raw_rate:.0f} ms per job"
        )
        print(
            f"worker slots ({slots}) busy {result.busy / (slots * result.running_span):.0%} of the time; "
            f"idle slot time {1000 * idle_slots / BURST:.0f} ms per job"
        )

        print("\n(c) where one job's time goes at idle (medians)")
        print(f"{'part':<44} {'p50':>11}")
        in_worker = [job.running - job.raw for job in idle]
        overhead = [job.to_visible - job.raw for job in idle]
        parts: list[tuple[str, list[float]]] = [
            ("raw Piper, same text, just before", [job.raw for job in idle]),
            ("worker run (startedAt → finishedAt)", [job.running for job in idle]),
            ("  of which not synthesis", in_worker),
            ("queued (createdAt → startedAt)", [job.queued for job in idle]),
            ("finishedAt → succeeded visible", [job.after_finish for job in idle]),
            ("end to end (202 → succeeded visible)", [job.to_visible for job in idle]),
            ("overhead per job (end to end − raw)", overhead),
        ]
        for label, values in parts:
            print(f"{label:<44} {_ms(values)}")


def main() -> None:
    engine = PiperEngine.bundled()
    engine.load()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = Path(tmp) / "serve.log"
        server, token = start_server(Path(tmp) / "data", port, log)
        try:
            print(
                f"openfish jobs benchmark ({os.cpu_count()} cores), {FORMAT}, "
                "embedded worker with default settings"
            )
            asyncio.run(run(f"http://127.0.0.1:{port}", token, engine))
        except BaseException:
            print(f"server exit status {server.poll()}; its log:\n{log.read_text()}", file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()

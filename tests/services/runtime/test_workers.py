"""The worker pool runs the earliest deadline first and hands results and errors back."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from openfish.services.runtime.workers import WorkerPool


async def test_queued_jobs_run_earliest_deadline_first() -> None:
    pool = WorkerPool(workers=1)
    pool.start()
    gate, busy = threading.Event(), threading.Event()
    order: list[str] = []

    def block() -> None:
        busy.set()
        gate.wait()

    try:
        blocker = pool.submit(block)  # occupies the only thread while the others queue
        assert await asyncio.to_thread(busy.wait, 5)
        now = time.monotonic()
        later = pool.submit(lambda: order.append("later"), deadline=now + 5)
        urgent = pool.submit(lambda: order.append("urgent"), deadline=now - 1)
        soon = pool.submit(lambda: order.append("soon"), deadline=now + 1)
        assert pool.queued == 3
        gate.set()
        await asyncio.gather(blocker, later, urgent, soon)
        assert order == ["urgent", "soon", "later"]
    finally:
        pool.stop()


async def test_errors_reach_the_caller_and_stop_cancels_queued_work() -> None:
    pool = WorkerPool(workers=1)
    pool.start()

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await pool.submit(fail)
    gate, busy = threading.Event(), threading.Event()

    def block() -> None:
        busy.set()
        gate.wait()

    running = pool.submit(block)
    assert await asyncio.to_thread(busy.wait, 5)
    queued = pool.submit(lambda: "never")
    pool.stop()
    gate.set()
    await running
    with pytest.raises(asyncio.CancelledError):
        await queued

"""The bounded pool that runs engine work off the event loop, earliest deadline first.

Each job carries the moment its result is needed. A new TTS request's first piece is needed now;
a later piece is needed when the client will have played the audio already sent. Running the
earliest deadline first lets a new request start speaking at once even while long streams are
in progress, and long streams still get their pieces before their listeners run dry.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(order=True)
class _Job:
    deadline: float
    sequence: int
    function: Callable[[], Any] = field(compare=False)
    future: Future[Any] = field(compare=False)


class WorkerPool:
    """A fixed set of threads started and stopped with the app's lifespan (restartable)."""

    def __init__(self, workers: int, name: str = "openfish-engine") -> None:
        self._workers = workers
        self._name = name
        self._jobs: list[_Job] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._running = False

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread."""
        with self._condition:
            return len(self._jobs)

    def start(self) -> None:
        """Start the threads; idempotent."""
        with self._condition:
            if self._running:
                return
            self._running = True
            self._threads = [
                threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
                for i in range(self._workers)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Cancel queued jobs and let the threads end after their current job."""
        with self._condition:
            self._running = False
            for job in self._jobs:
                job.future.cancel()
            self._jobs.clear()
            self._condition.notify_all()
        self._threads = []

    def submit(self, function: Callable[[], T], deadline: float | None = None) -> asyncio.Future[T]:
        """Run ``function`` in the pool by ``deadline`` (``time.monotonic()`` seconds; default now)."""
        if not self._running:
            self.start()
        future: Future[T] = Future()
        job = _Job(time.monotonic() if deadline is None else deadline, next(self._sequence), function, future)
        with self._condition:
            heapq.heappush(self._jobs, job)
            self._condition.notify()
        return asyncio.wrap_future(future)

    def _work(self) -> None:
        while True:
            with self._condition:
                while self._running and not self._jobs:
                    self._condition.wait()
                if not self._running:
                    return
                job = heapq.heappop(self._jobs)
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.function())
            except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
                job.future.set_exception(exc)

"""The bounded pool that runs engine work (synthesis, model loading) off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WorkerPool:
    """A thread pool started and stopped with the app's lifespan (so an app can be restarted)."""

    def __init__(self, workers: int, name: str = "openfish-engine") -> None:
        self._workers = workers
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Create the threads' executor; idempotent."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._name)

    def stop(self) -> None:
        """Refuse new work, drop queued work; running work finishes in the background."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``function`` in the pool; the future resolves on the running event loop."""
        if self._executor is None:
            self.start()
        assert self._executor is not None
        return asyncio.get_running_loop().run_in_executor(self._executor, function)

"""Readiness checks: named probes that must all pass before traffic is welcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("openfish.readiness")

Probe = Callable[[], Awaitable[None]]
PROBE_TIMEOUT_SECONDS = 5.0


class Readiness:
    """Each part of the server (database, engines) registers a probe that raises when not ready."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}

    def add(self, name: str, probe: Probe) -> None:
        """Register a probe under a unique name."""
        if name in self._probes:
            raise ValueError(f"readiness probe {name!r} is already registered")
        self._probes[name] = probe

    async def run(self) -> dict[str, str]:
        """``{name: "ok" | reason}`` for every probe; a reason names the failure's kind only."""
        results: dict[str, str] = {}
        for name, probe in self._probes.items():
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
            except Exception as exc:  # a probe reports any failure; the log keeps the detail
                logger.warning("readiness probe %s failed", name, exc_info=exc)
                results[name] = f"failed: {type(exc).__name__}"
            else:
                results[name] = "ok"
        return results

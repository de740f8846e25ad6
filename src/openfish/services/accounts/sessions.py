"""What every realtime session shares: a per-account cap on open sessions, and a credit meter that
holds credits in blocks while the session is used and charges, once, for what was served.

A session's price is not known when it opens, so it cannot be held up front like a job's. The meter
holds a block when the first billable unit is about to be served and grows the hold block by block
(each growth is a conditional debit, so the balance never goes below zero however many sessions
run); when the session ends, however it ends, one capture turns the hold into a charge of exactly
the units served and gives the rest back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio

from openfish.config import Settings, TierSettings
from openfish.errors import InsufficientCredits, RateLimited
from openfish.services.accounts.billing import BillingService
from openfish.services.runtime.ids import new_id
from openfish.store.counters import Counters
from openfish.store.models import utcnow

TTS_SURFACE = "tts_realtime"
ASR_SURFACE = "asr_realtime"
SURFACES = (TTS_SURFACE, ASR_SURFACE)


class SessionSlots:
    """Open realtime sessions per account, counted through the shared counters."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    @asynccontextmanager
    async def hold(self, account_id: str, tier: TierSettings) -> AsyncIterator[None]:
        """Count a session in for as long as the block runs, or raise RateLimited at the cap."""
        key = _sessions(account_id)
        if not await self._counters.acquire(key, limit=tier.max_realtime_sessions):
            raise RateLimited(
                f"at most {tier.max_realtime_sessions} realtime sessions at once on this tier", retry_after=5
            )
        try:
            yield
        finally:
            # Shielded: a cancelled session (client gone, server stopping) must still give its slot back.
            with anyio.CancelScope(shield=True):
                await self._counters.release(key)

    async def open_sessions(self, account_id: str) -> int:
        """Sessions of the account now open."""
        return await self._counters.held(_sessions(account_id))


def _sessions(account_id: str) -> str:
    return f"realtime-sessions:{account_id}"


class CreditMeter:
    """Credits of one realtime stream (one ``start`` … ``finish``)."""

    def __init__(
        self, billing: BillingService, account_id: str, surface: str, *, block: int, prefix: str
    ) -> None:
        self._billing = billing
        self._account_id = account_id
        self._surface = surface
        self._block = max(1, block)
        self.reference = new_id(prefix)
        self._held = 0
        self._steps = 0
        self.used = 0
        self.units = 0
        self._settled = False

    @property
    def held(self) -> int:
        """Credits set aside so far."""
        return self._held

    async def reserve(self, credits: int) -> None:
        """Make sure ``credits`` more can be served; raises InsufficientCredits / QuotaExceeded when
        the account cannot cover them (nothing changes then)."""
        needed = self.used + credits - self._held
        if needed <= 0:
            return
        for amount in dict.fromkeys((max(needed, self._block), needed)):
            try:
                await self._grow(amount)
                return
            except InsufficientCredits:  # QuotaExceeded too
                if amount == needed:
                    raise

    def served(self, credits: int, units: int) -> None:
        """Count what was delivered to the client (after ``reserve`` covered it)."""
        self.used += credits
        self.units += units

    async def settle(self) -> None:
        """Charge what was served and give back the rest; runs to completion even when the session
        is being cancelled (abrupt disconnects), and only once."""
        if self._settled:
            return
        self._settled = True
        if self._held == 0:
            return
        with anyio.CancelScope(shield=True):
            await self._billing.capture(self.reference, min(self.used, self._held), units=self.units)

    async def _grow(self, amount: int) -> None:
        if self._held == 0:
            await self._billing.hold(
                self._account_id, amount, reference=self.reference, surface=self._surface
            )
        else:
            self._steps += 1
            await self._billing.extend_hold(self.reference, amount, step=self._steps)
        self._held += amount


async def release_abandoned(billing: BillingService, settings: Settings) -> int:
    """Release holds of realtime sessions that outlived any session (their server died before
    settling): what they served is not charged, and their credits come back."""
    cutoff = utcnow() - timedelta(seconds=settings.realtime.max_session_seconds + 300)
    return await billing.release_stale(SURFACES, cutoff)

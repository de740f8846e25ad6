"""The credit ledger: charges, holds, captures, releases and top-ups.

Every movement is one transaction that (1) moves the balance with a conditional ``UPDATE`` whose
``WHERE`` re-checks the balance and monthly quota, so no interleaving can take the balance below
zero, and (2) appends a ledger row whose ``(kind, reference)`` is unique, so a retried operation
finds the first one and changes nothing. The ledger of an account always sums to its balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy import ColumnElement, case, update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.errors import InsufficientCredits, InvalidRequest, NotFound, QuotaExceeded
from openfish.services.accounts.ledger import (
    HOLD_CAPTURED,
    HOLD_HELD,
    HOLD_RELEASED,
    HoldState,
    append_entry,
    balance,
    entry_exists,
    give_back,
    grow_hold,
    hold_state,
    open_hold,
    settle_hold,
    stale_holds,
)
from openfish.services.runtime.ids import new_id
from openfish.store.database import Database
from openfish.store.models import Account, CreditHold, utcnow

__all__ = [
    "HOLD_CAPTURED",
    "HOLD_HELD",
    "HOLD_RELEASED",
    "BillingService",
    "ChargeResult",
    "HoldState",
    "quota_period",
]


@dataclass(frozen=True)
class ChargeResult:
    """What a charge or hold did, for the response headers and fields."""

    reference: str
    credits_used: int
    balance: int
    quota_remaining: int


def quota_period(moment: datetime) -> str:
    """The calendar month (UTC) a quota counts, as ``YYYY-MM``."""
    return moment.strftime("%Y-%m")


class BillingService:
    """Moves credits; the only code that writes ``accounts.credits`` or the ledger (the statements
    on their rows are in :mod:`openfish.services.accounts.ledger`)."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    def monthly_quota(self, account: Account) -> int | None:
        """The account's monthly quota in credits, or None when only the balance limits it."""
        if account.quota_override is not None:
            return account.quota_override
        tier = self._settings.tiers.get(account.tier)
        return tier.monthly_quota if tier else None

    def quota_remaining(self, account: Account) -> int:
        """Credits the account may still spend this month: quota left, capped by the balance."""
        quota = self.monthly_quota(account)
        if quota is None:
            return account.credits
        used = account.quota_used if account.quota_period == quota_period(self._clock()) else 0
        return max(0, min(quota - used, account.credits))

    @asynccontextmanager
    async def _transaction(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        # Callers that must move money together with their own rows (a job and its hold) pass their
        # transaction; otherwise each operation is a transaction of its own.
        if session is not None:
            yield session
        else:
            async with self._db.transaction() as own:
                yield own

    async def charge(
        self, account_id: str, amount: int, *, reference: str, surface: str, units: int = 0
    ) -> ChargeResult:
        """Take ``amount`` credits for work that already succeeded; a repeat is a no-op."""
        return await self._debit("charge", account_id, amount, reference, surface, units)

    async def hold(
        self,
        account_id: str,
        amount: int,
        *,
        reference: str,
        surface: str,
        units: int = 0,
        session: AsyncSession | None = None,
    ) -> ChargeResult:
        """Set ``amount`` credits aside for async work; a repeat returns the first hold."""
        return await self._debit("hold", account_id, amount, reference, surface, units, session)

    async def extend_hold(self, reference: str, amount: int, *, step: int) -> ChargeResult:
        """Set ``amount`` more credits aside under an open hold (a realtime session grows its hold
        as it is used). ``step`` numbers the extensions of one hold, so a retry changes nothing."""
        if step < 1:
            raise InvalidRequest("extension steps start at 1")
        extension = f"{reference}+{step}"
        async with self._db.transaction() as session:
            # The hold before the account (the order capture and release take them in too).
            hold = await session.get(CreditHold, reference, with_for_update=True, populate_existing=True)
            if hold is None or hold.status != HOLD_HELD:
                raise NotFound(f"no open credit hold {reference}")
            repeated = await entry_exists(session, "hold", extension)
            result = await self._debit(
                "hold", hold.account_id, amount, extension, hold.surface or "", 0, session, new_hold=False
            )
            if repeated:
                return result
            await grow_hold(session, reference, amount)
            return result

    async def capture(
        self,
        reference: str,
        amount: int | None = None,
        *,
        units: int | None = None,
        session: AsyncSession | None = None,
    ) -> HoldState:
        """Turn a hold into a charge of ``amount`` (default: all of it), refunding the rest;
        ``units`` (default: the hold's) is what the usage report counts as served.

        Capturing or releasing a hold that is already settled changes nothing.
        """
        async with self._transaction(session) as session:
            hold = await settle_hold(session, reference, HOLD_CAPTURED, at=self._clock())
            if hold is None:
                return await hold_state(session, reference)
            final = hold.amount if amount is None else max(0, min(amount, hold.amount))
            refund = hold.amount - final
            await give_back(session, hold, refund)
            served = hold.units if units is None else units
            append_entry(
                session,
                hold.account_id,
                "capture",
                reference,
                refund,
                final,
                hold.surface,
                served,
                at=self._clock(),
            )
            return HoldState(reference, hold.account_id, hold.amount, HOLD_CAPTURED)

    async def release(self, reference: str, *, session: AsyncSession | None = None) -> HoldState:
        """Return a held amount in full; a repeat, or a release after capture, changes nothing."""
        async with self._transaction(session) as session:
            hold = await settle_hold(session, reference, HOLD_RELEASED, at=self._clock())
            if hold is None:
                return await hold_state(session, reference)
            await give_back(session, hold, hold.amount)
            append_entry(
                session,
                hold.account_id,
                "release",
                reference,
                hold.amount,
                0,
                hold.surface,
                0,
                at=self._clock(),
            )
            return HoldState(reference, hold.account_id, hold.amount, HOLD_RELEASED)

    async def settle(self, reference: str, *, succeeded: bool) -> None:
        """Capture (work succeeded) or release a hold — even while the caller is being cancelled, so
        an abandoned stream or request can never leave credits held."""
        with anyio.CancelScope(shield=True):
            if succeeded:
                await self.capture(reference)
            else:
                await self.release(reference)

    @asynccontextmanager
    async def metered(
        self, account_id: str, amount: int, *, reference: str, surface: str, units: int = 0
    ) -> AsyncIterator[ChargeResult]:
        """Hold ``amount`` for the work in the block, capture it when the block completes, release
        it when the block raises or is cancelled: the one shape of every piece of synchronous paid
        work (``async with billing.metered(...) as hold:``)."""
        hold = await self.hold(account_id, amount, reference=reference, surface=surface, units=units)
        succeeded = False
        try:
            yield hold
            succeeded = True
        finally:
            await self.settle(reference, succeeded=succeeded)

    async def release_stale(self, surfaces: Collection[str], opened_before: datetime) -> int:
        """Release the open holds of ``surfaces`` opened before ``opened_before``: sessions whose
        process died before settling them. Returns how many were released."""
        async with self._db.session() as session:
            references = await stale_holds(session, surfaces, opened_before)
        for reference in references:
            await self.release(reference)
        return len(references)

    async def top_up(
        self, account_id: str, amount: int, *, reference: str | None = None, memo: str | None = None
    ) -> int:
        """Add credits; returns the new balance. A repeated ``reference`` adds nothing."""
        if amount <= 0:
            raise InvalidRequest("amount must be a positive number of credits")
        reference = reference or new_id("topup")
        async with self._db.transaction() as session:
            if await entry_exists(session, "topup", reference):
                return await balance(session, account_id)
            result = await session.execute(
                update(Account).where(Account.id == account_id).values(credits=Account.credits + amount)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"account {account_id} does not exist")
            append_entry(
                session, account_id, "topup", reference, amount, 0, None, 0, at=self._clock(), memo=memo
            )
            return await balance(session, account_id)

    async def _debit(
        self,
        kind: str,
        account_id: str,
        amount: int,
        reference: str,
        surface: str,
        units: int,
        outer: AsyncSession | None = None,
        *,
        new_hold: bool = True,
    ) -> ChargeResult:
        if amount < 0:
            raise InvalidRequest("a charge cannot be negative")
        period = quota_period(self._clock())
        async with self._transaction(outer) as session:
            # Locked first (PostgreSQL; SQLite's writers are serialized anyway): a concurrent
            # repeat of this reference waits here and then finds the entry, instead of debiting
            # too and failing on the ledger's unique key.
            account = await session.get(Account, account_id, with_for_update=True, populate_existing=True)
            if account is None:
                raise NotFound(f"account {account_id} does not exist")
            if await entry_exists(session, kind, reference):
                await session.refresh(account)
                return ChargeResult(reference, amount, account.credits, self.quota_remaining(account))
            quota = self.monthly_quota(account)
            used_now: ColumnElement[int] = case((Account.quota_period == period, Account.quota_used), else_=0)
            guard = [Account.id == account_id, Account.credits >= amount]
            if quota is not None:
                guard.append(used_now + amount <= quota)
            result = await session.execute(
                update(Account)
                .where(*guard)
                .values(credits=Account.credits - amount, quota_used=used_now + amount, quota_period=period)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                if account.credits < amount:
                    raise InsufficientCredits(
                        f"this request needs {amount} credits; the balance is {account.credits}"
                    )
                raise QuotaExceeded(f"this request needs {amount} credits; the monthly quota is {quota}")
            if kind == "hold" and new_hold:
                open_hold(session, reference, account_id, amount, surface, units, period)
            used = amount if kind == "charge" else 0
            append_entry(
                session, account_id, kind, reference, -amount, used, surface, units, at=self._clock()
            )
            await session.flush()
            await session.refresh(account)
            return ChargeResult(reference, amount, account.credits, self.quota_remaining(account))

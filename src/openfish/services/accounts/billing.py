"""The credit ledger: charges, holds, captures, releases and top-ups.

Every movement is one transaction that (1) appends a ledger row whose ``(kind, reference)`` is
unique, so a retried operation finds the first one and changes nothing, and (2) moves the balance
with a conditional ``UPDATE`` whose ``WHERE`` re-checks the balance and monthly quota, so no
interleaving can take the balance below zero; a refused movement takes its ledger row back. The
ledger of an account always sums to its balance.

A charge is two statements (plus the transaction's begin and commit; a hold adds its hold row): the
ledger row, which on PostgreSQL also makes a concurrent repeat of the same reference wait for the
first and then do nothing, and the guarded ``UPDATE ... RETURNING`` of the balance, which holds the
account's row lock only from that statement to the commit. Both are built once and run with
parameters (``bench/README.md``, ``bench.cluster``: what a charge costs, and why).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.errors import InsufficientCredits, InvalidRequest, NotFound, QuotaExceeded
from openfish.services.accounts.ledger import (
    ACCOUNTS,
    HOLD_CAPTURED,
    HOLD_HELD,
    HOLD_RELEASED,
    HoldState,
    account_row,
    add_entry,
    balance,
    give_back,
    grow_hold,
    hold_state,
    open_hold,
    remove_entry,
    settle_hold,
    stale_holds,
)
from openfish.services.accounts.quotas import (
    debit_statement,
    quota_left,
    quota_of,
    quota_period,
    quota_renews_in,
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


class BillingService:
    """Moves credits; the only code that writes ``accounts.credits`` or the ledger (the statements
    on their rows are in :mod:`openfish.services.accounts.ledger`, but for the guarded debit, which
    decides: :func:`openfish.services.accounts.quotas.debit_statement`)."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._debit_statement = debit_statement(settings.tiers)

    def monthly_quota(self, account: Account) -> int | None:
        """The account's monthly quota in credits, or None when only the balance limits it."""
        return quota_of(self._settings.tiers, account.tier, account.quota_override)

    def quota_remaining(self, account: Account) -> int:
        """Credits the account may still spend this month: quota left, capped by the balance."""
        used = account.quota_used if account.quota_period == quota_period(self._clock()) else 0
        return quota_left(self.monthly_quota(account), used, account.credits)

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
        result, _ = await self._debit("charge", account_id, amount, reference, surface, units)
        return result

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
        result, _ = await self._debit("hold", account_id, amount, reference, surface, units, session)
        return result

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
            result, moved = await self._debit(
                "hold", hold.account_id, amount, extension, hold.surface or "", 0, session, new_hold=False
            )
            if moved:
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
            await add_entry(
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
            await add_entry(
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
            entry = await add_entry(
                session, account_id, "topup", reference, amount, 0, None, 0, at=self._clock(), memo=memo
            )
            if entry is not None:  # else done before, or no such account (which balance() reports)
                await session.execute(
                    update(ACCOUNTS)
                    .where(ACCOUNTS.c.id == account_id)
                    .values(credits=ACCOUNTS.c.credits + amount)
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
    ) -> tuple[ChargeResult, bool]:
        """Take ``amount`` for a charge or hold: the result, and whether money moved (False: the
        movement was made before and this is its repeat)."""
        if amount < 0:
            raise InvalidRequest("a charge cannot be negative")
        now = self._clock()
        period = quota_period(now)
        used = amount if kind == "charge" else 0
        async with self._transaction(outer) as session:
            entry = await add_entry(
                session, account_id, kind, reference, -amount, used, surface, units, at=now
            )
            if entry is None:  # a repeat (a concurrent first try has committed), or no such account
                account = await account_row(session, account_id)
                return ChargeResult(reference, amount, account.credits, self.quota_remaining(account)), False
            debited = (
                await session.execute(
                    self._debit_statement, {"account": account_id, "amount": amount, "period": period}
                )
            ).first()
            if debited is None:
                # Refused: take the ledger row back, so that nothing is left even in a caller's
                # transaction that goes on after the error.
                await remove_entry(session, entry)
                account = await account_row(session, account_id)
                if account.credits < amount:
                    raise InsufficientCredits(
                        f"this request needs {amount} credits; the balance is {account.credits}"
                    )
                quota = self.monthly_quota(account)
                # Waiting for the next month helps only if a whole month's quota covers the request.
                renews = quota_renews_in(now) if quota is not None and amount <= quota else None
                raise QuotaExceeded(
                    f"this request needs {amount} credits; the monthly quota is {quota}", retry_after=renews
                )
            if kind == "hold" and new_hold:
                await open_hold(session, reference, account_id, amount, surface, units, period)
            credits, quota_used, override, tier = debited
            remaining = quota_left(quota_of(self._settings.tiers, tier, override), quota_used, credits)
            return ChargeResult(reference, amount, credits, remaining), True

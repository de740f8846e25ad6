"""The rows under the credit ledger: ledger entries, credit holds and their statuses, and the
statements that read and write them.

Each statement runs inside the caller's transaction and decides nothing: which movement is allowed,
and when, is :class:`openfish.services.accounts.billing.BillingService`'s, the only caller.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.errors import NotFound
from openfish.store.models import Account, CreditHold, LedgerEntry

HOLD_HELD = "held"
HOLD_CAPTURED = "captured"
HOLD_RELEASED = "released"


@dataclass(frozen=True)
class HoldState:
    """A hold as it stands after an operation on it."""

    reference: str
    account_id: str
    amount: int
    status: str


def open_hold(
    session: AsyncSession, reference: str, account_id: str, amount: int, surface: str, units: int, period: str
) -> None:
    """Add the row of a new hold of ``amount``, taken from the monthly quota of ``period``."""
    session.add(
        CreditHold(
            reference=reference,
            account_id=account_id,
            amount=amount,
            surface=surface,
            units=units,
            status=HOLD_HELD,
            quota_period=period,
        )
    )


async def grow_hold(session: AsyncSession, reference: str, amount: int) -> None:
    """Add ``amount`` to what the hold sets aside."""
    await session.execute(
        update(CreditHold)
        .where(CreditHold.reference == reference)
        .values(amount=CreditHold.amount + amount)
        .execution_options(synchronize_session=False)
    )


async def stale_holds(
    session: AsyncSession, surfaces: Collection[str], opened_before: datetime
) -> Sequence[str]:
    """The references of the holds of ``surfaces`` still held that were opened before ``opened_before``."""
    return (
        await session.scalars(
            select(CreditHold.reference).where(
                CreditHold.status == HOLD_HELD,
                CreditHold.surface.in_(list(surfaces)),
                CreditHold.created_at < opened_before,
            )
        )
    ).all()


async def settle_hold(
    session: AsyncSession, reference: str, status: str, *, at: datetime
) -> CreditHold | None:
    """Move the hold from held to ``status``; None when it is not held (settled, or never made)."""
    result = await session.execute(
        update(CreditHold)
        .where(CreditHold.reference == reference, CreditHold.status == HOLD_HELD)
        .values(status=status, settled_at=at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return None
    return await session.get(CreditHold, reference, populate_existing=True)


async def give_back(session: AsyncSession, hold: CreditHold, amount: int) -> None:
    """Return ``amount`` of the hold to the balance, and to the monthly quota used while the account
    still counts the month the hold was taken in."""
    if amount == 0:
        return
    quota_used = case(
        (Account.quota_period == hold.quota_period, Account.quota_used - amount),
        else_=Account.quota_used,
    )
    await session.execute(
        update(Account)
        .where(Account.id == hold.account_id)
        .values(credits=Account.credits + amount, quota_used=quota_used)
        .execution_options(synchronize_session=False)
    )


async def hold_state(session: AsyncSession, reference: str) -> HoldState:
    """The hold as it stands; NotFound when there is none."""
    hold = await session.get(CreditHold, reference)
    if hold is None:
        raise NotFound(f"no credit hold {reference}")
    return HoldState(reference, hold.account_id, hold.amount, hold.status)


async def entry_exists(session: AsyncSession, kind: str, reference: str) -> bool:
    """Whether the ledger already has the ``(kind, reference)`` row: the operation was done."""
    found = await session.scalar(
        select(LedgerEntry.id).where(LedgerEntry.kind == kind, LedgerEntry.reference == reference)
    )
    return found is not None


async def balance(session: AsyncSession, account_id: str) -> int:
    """The account's credits; NotFound when there is no such account."""
    credits = await session.scalar(select(Account.credits).where(Account.id == account_id))
    if credits is None:
        raise NotFound(f"account {account_id} does not exist")
    return credits


def append_entry(
    session: AsyncSession,
    account_id: str,
    kind: str,
    reference: str,
    amount: int,
    credits_used: int,
    surface: str | None,
    units: int,
    *,
    at: datetime,
    memo: str | None = None,
) -> None:
    """Add the ledger row of one movement made ``at`` (its ``day`` is the date of ``at``)."""
    session.add(
        LedgerEntry(
            account_id=account_id,
            kind=kind,
            reference=reference,
            amount=amount,
            credits_used=credits_used,
            surface=surface,
            units=units,
            day=at.strftime("%Y-%m-%d"),
            memo=memo,
            created_at=at,
        )
    )

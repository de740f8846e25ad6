"""The rows under the credit ledger: ledger entries, credit holds and their statuses, and the
statements that read and write them.

Each statement runs inside the caller's transaction and decides nothing: which movement is allowed,
and when, is :class:`openfish.services.accounts.billing.BillingService`'s, the only caller.

The statements every paid request runs (a ledger row, a hold row) are Core statements built once at
import and given their values as parameters: building and cache-keying a statement per call, or
going through the ORM's unit of work, costs the node about as much CPU as the database spends on
the whole transaction (``bench/README.md``, ``bench.cluster``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, case, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
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


ACCOUNTS = Account.metadata.tables[Account.__tablename__]
_LEDGER = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
_HOLDS = CreditHold.metadata.tables[CreditHold.__tablename__]
_ENTRY_COLUMNS = (
    "kind",
    "reference",
    "amount",
    "credits_used",
    "surface",
    "units",
    "day",
    "memo",
    "created_at",
)


def _add_entry(dialect_insert: Callable[[Table], Any]) -> Insert:
    # INSERT ... SELECT from the account's row: no row goes in for an account that does not exist
    # (instead of a foreign key error), and none for a (kind, reference) that is there already
    # (instead of a unique key error that would spoil the transaction). On PostgreSQL a concurrent
    # insert of the same (kind, reference) waits for the first transaction and then does nothing.
    values = select(
        ACCOUNTS.c.id, *(bindparam(name, type_=_LEDGER.c[name].type) for name in _ENTRY_COLUMNS)
    ).where(ACCOUNTS.c.id == bindparam("account"))
    statement: Insert = (
        dialect_insert(_LEDGER)
        .from_select(("account_id", *_ENTRY_COLUMNS), values)
        .on_conflict_do_nothing(index_elements=["kind", "reference"])
        .returning(_LEDGER.c.id)
    )
    return statement


#: By dialect name: the ledger row of one movement, once.
_ADD_ENTRY = {"sqlite": _add_entry(sqlite.insert), "postgresql": _add_entry(postgresql.insert)}
_REMOVE_ENTRY = delete(_LEDGER).where(_LEDGER.c.id == bindparam("entry"))
_OPEN_HOLD = insert(_HOLDS)


async def add_entry(
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
) -> int | None:
    """Add the ledger row of one movement made ``at`` (its ``day`` is the date of ``at``): its id,
    or None when the account does not exist or ``(kind, reference)`` is in the ledger already (the
    movement was made before, by this call's first try or a concurrent one)."""
    statement = _ADD_ENTRY[session.get_bind().dialect.name]
    values = {
        "account": account_id,
        "kind": kind,
        "reference": reference,
        "amount": amount,
        "credits_used": credits_used,
        "surface": surface,
        "units": units,
        "day": at.strftime("%Y-%m-%d"),
        "memo": memo,
        "created_at": at,
    }
    entry: int | None = (await session.execute(statement, values)).scalar()
    return entry


async def remove_entry(session: AsyncSession, entry: int) -> None:
    """Take back the ledger row just added by :func:`add_entry` (its movement was refused)."""
    await session.execute(_REMOVE_ENTRY, {"entry": entry})


async def open_hold(
    session: AsyncSession, reference: str, account_id: str, amount: int, surface: str, units: int, period: str
) -> None:
    """Add the row of a new hold of ``amount``, taken from the monthly quota of ``period``."""
    values = {
        "reference": reference,
        "account_id": account_id,
        "amount": amount,
        "surface": surface,
        "units": units,
        "status": HOLD_HELD,
        "quota_period": period,
    }
    await session.execute(_OPEN_HOLD, values)


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


async def balance(session: AsyncSession, account_id: str) -> int:
    """The account's credits; NotFound when there is no such account."""
    credits = await session.scalar(select(Account.credits).where(Account.id == account_id))
    if credits is None:
        raise NotFound(f"account {account_id} does not exist")
    return credits


async def account_row(session: AsyncSession, account_id: str) -> Account:
    """The account as it stands in the database (not a stale copy from the session); NotFound when
    there is no such account."""
    account = await session.get(Account, account_id, populate_existing=True)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    return account

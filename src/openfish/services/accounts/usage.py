"""Usage reports, read from the credit ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from openfish.store.database import Database
from openfish.store.models import LedgerEntry

#: Ledger kinds that record work done: a sync charge, or the capture of an async hold.
USAGE_KINDS = ("charge", "capture")


@dataclass(frozen=True)
class UsageRow:
    """What one account used on one surface on one UTC day."""

    day: str
    surface: str
    requests: int
    units: int
    credits_used: int


class UsageService:
    """Aggregates the ledger by surface and day."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def report(self, account_id: str, start: date, end: date) -> list[UsageRow]:
        """Usage rows for ``start``..``end`` inclusive, ordered by day then surface."""
        query = (
            select(
                LedgerEntry.day,
                LedgerEntry.surface,
                func.count(),
                func.coalesce(func.sum(LedgerEntry.units), 0),
                func.coalesce(func.sum(LedgerEntry.credits_used), 0),
            )
            .where(
                LedgerEntry.account_id == account_id,
                LedgerEntry.kind.in_(USAGE_KINDS),
                LedgerEntry.day >= start.isoformat(),
                LedgerEntry.day <= end.isoformat(),
            )
            .group_by(LedgerEntry.day, LedgerEntry.surface)
            .order_by(LedgerEntry.day, LedgerEntry.surface)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return [
            UsageRow(day=day, surface=surface or "other", requests=int(n), units=int(u), credits_used=int(c))
            for day, surface, n, u, c in rows
        ]

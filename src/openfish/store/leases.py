"""Claiming a row with a lease: the pieces the job queue and webhook delivery share.

A claimable row carries an attempt counter and a lease expiry. A process claims one in two steps:
it reads a candidate, then runs one conditional ``UPDATE ... SET attempt = seen + 1, lease ...
WHERE id = ? AND attempt = seen AND <still claimable>`` and keeps the row only if exactly one row
changed (:func:`take_row`).

Why that is safe across processes, with no lock held between the read and the write: the database
evaluates an ``UPDATE``'s ``WHERE`` against the row as it is when the write happens (SQLite
serialises writers; PostgreSQL re-checks the condition on the newest row version once it holds the
row lock). Of several processes that read the same candidate, the first to write moves the counter
on, so every other one's ``attempt = seen`` no longer matches and it changes nothing: exactly one
wins, whatever the timing. Re-stating the claim conditions catches the other ways the row may have
changed meanwhile (cancelled, finished, leased again). And because every claim bumps the counter,
it also fences the holder's later writes: each is guarded by ``attempt = <claimed value>``, so a
process whose lease ran out and was taken over can no longer overwrite the new holder's work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, inspect, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from openfish.store.models import Base


def lease_expiry(now: datetime, seconds: float, margin: timedelta = timedelta(0)) -> datetime:
    """When a lease taken at ``now`` for ``seconds`` runs out, ``margin`` added (slack for a holder
    whose own deadline is ``seconds``, so that it is not taken over while still finishing)."""
    return now + timedelta(seconds=seconds) + margin


def lease_free(expires: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """The rows that nobody holds at ``now``: never leased (or released), or leased until ``now`` at
    the latest. (The job queue states its own: a processing job's lease is taken over only strictly
    after it runs out.)"""
    return or_(expires.is_(None), expires <= now)


async def take_row(
    session: AsyncSession,
    seen: Base,
    attempt: InstrumentedAttribute[int],
    *,
    still: Sequence[ColumnElement[bool]],
    values: Mapping[str, Any],
) -> bool:
    """Claim the row that ``seen`` was read from: set its ``attempt`` counter to one more than
    ``seen`` holds, and ``values`` (the lease, status, ...), provided the counter is still what
    ``seen`` holds and every condition in ``still`` still holds. True when this call won the row
    (exactly one row changed); False when another process got there first or the row is no longer
    claimable.

    Runs in ``session``'s transaction: the claim holds once the caller commits it.
    """
    # The row by its primary key, found through the mapping so that any claimable table can use this.
    mapper = inspect(type(seen))
    key = mapper.primary_key_from_instance(seen)
    count: int = getattr(seen, attempt.key)
    result = await session.execute(
        update(type(seen))
        .where(*(column == value for column, value in zip(mapper.primary_key, key, strict=True)))
        .where(attempt == count, *still)
        .values({attempt.key: count + 1, **values})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]

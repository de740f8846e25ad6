"""The counters contract on the main database: one account's limits hold across every API node that
shares it.

Two tables (migration 0007): ``counter_events`` holds one row per counted hit of a sliding window,
until it leaves the window; ``counter_slots`` one row per slot taken, until it is given back or
expires.

Why the counts are exact across processes: every decision to count (``hit``, ``acquire``) reads
the key's live rows and inserts one only if they are below the limit, in one write transaction
that is serialised per key, so no two deciders ever read the same count:

- PostgreSQL: the transaction first takes ``pg_advisory_xact_lock(namespace, hashtext(key))``,
  which is held until it commits or rolls back. Every later statement runs under READ COMMITTED
  (PostgreSQL's default, which openfish never changes) and so takes its snapshot after the lock was
  granted; a transaction's commit is visible before its locks are released, so the count includes
  every row the key's previous lock holders wrote. Other keys are not blocked.
- SQLite: :meth:`Database.transaction` opens ``BEGIN IMMEDIATE``, the file's one writer lock, so
  every write transaction (of this process or any other on the file) runs alone.

Writes that do not decide anything need no lock: ``release`` deletes one row by its primary key,
and the sweep deletes rows that have already expired, which no count includes any more.

Time is wall time, Unix seconds (an injectable clock), stored as a double: a row is compared with
other nodes' clocks, which a monotonic clock could not be. Nodes must keep their clocks in sync
(NTP); skew shifts window edges and slot expiries by the skew, no more.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Result, delete, func, insert, literal, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.store.database import Database
from openfish.store.models import CounterEvent, CounterSlot

#: The first of the two keys of every per-key advisory lock ("ofct" in ASCII), so that counters'
#: locks cannot meet the one-key locks of migrations or anything else's.
_NAMESPACE = 0x6F666374
_KEY_LOCK = text(f"SELECT pg_advisory_xact_lock({_NAMESPACE}, hashtext(:key))")
#: Taken (never waited for) by a sweep: two sweeps deleting the same rows in different orders
#: could deadlock, so while one node sweeps the others skip their turn. (Its first key is not the
#: namespace, so that it never meets a key's lock.)
_SWEEP_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_NAMESPACE + 1}, 0)")
#: Slack on a slot's expiry beyond the longest a slot is legitimately held.
SLOT_MARGIN_SECONDS = 300.0


class SqlCounters:
    """The :class:`~openfish.store.counters.Counters` contract on the main database.

    ``hold_seconds`` is the longest a slot may legitimately be held (a realtime session's longest
    life): a slot not given back by then, plus :data:`SLOT_MARGIN_SECONDS`, counts no more, so the
    slots of a node that died holding them free themselves. ``clock`` gives Unix seconds.
    """

    #: Expired rows of every key are deleted at most this often (seconds) by each instance.
    SWEEP_SECONDS = 60.0

    def __init__(self, db: Database, *, hold_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._slot_seconds = hold_seconds + SLOT_MARGIN_SECONDS
        #: Who holds a slot row (host, process, instance): for operators reading the table.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        #: Ids of the slot rows this instance took and has not given back, by key.
        self._mine: dict[str, list[str]] = {}
        self._next_sweep: float | None = None

    async def hit(self, key: str, *, window_seconds: float, limit: int) -> float | None:
        """Count one event for ``key`` unless ``limit`` already fall in the window (see ``Counters``)."""
        await self._sweep_if_due()
        async with self._db.transaction() as session:
            now = await self._serialise(session, key)
            if await _insert_below(
                session, CounterEvent, limit, now, key=key, expires_at=now + window_seconds
            ):
                return None
            # Refused, nothing counted: the wait is until the oldest live event leaves its window.
            first_out = await session.scalar(
                select(func.min(CounterEvent.expires_at)).where(*_live(CounterEvent, key, now))
            )
            return float(first_out) - now if first_out is not None else window_seconds

    async def acquire(self, key: str, *, limit: int) -> bool:
        """Take one of ``limit`` slots of ``key``; False, taking nothing, when all are taken."""
        await self._sweep_if_due()
        slot = uuid.uuid4().hex
        async with self._db.transaction() as session:
            now = await self._serialise(session, key)
            expires_at = now + self._slot_seconds
            if not await _insert_below(
                session, CounterSlot, limit, now, id=slot, key=key, holder=self.holder, expires_at=expires_at
            ):
                return False
        # Recorded only once committed. An acquire interrupted while committing may leave a row
        # that nothing here knows of: it counts until it expires, never longer.
        self._mine.setdefault(key, []).append(slot)
        return True

    async def release(self, key: str) -> None:
        """Give back a slot of ``key`` that this instance took (none taken: nothing happens)."""
        mine = self._mine.get(key)
        if not mine:
            return  # more releases than acquires never go below zero
        # Taken off the list before awaiting, so two releases of one key never delete the same row.
        slot = mine.pop()
        if not mine:
            del self._mine[key]
        async with self._db.transaction() as session:
            # By primary key: the row may already be gone (expired and swept), which is the same end.
            await session.execute(delete(CounterSlot).where(CounterSlot.id == slot))

    async def held(self, key: str) -> int:
        """Slots of ``key`` taken on any node and not expired."""
        live = _live(CounterSlot, key, self._clock())
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(CounterSlot).where(*live)) or 0)

    async def _serialise(self, session: AsyncSession, key: str) -> float:
        """Wait for the key's turn in this transaction (see the module's docstring); the time then.
        The clock is read after the wait, so a long wait never counts with a stale time."""
        if not self._db.is_sqlite:
            await session.execute(_KEY_LOCK, {"key": key})
        return self._clock()

    async def _sweep_if_due(self) -> None:
        """Delete every key's expired rows, at most once per ``SWEEP_SECONDS``: counts skip expired
        rows anyway, so this only keeps the tables from growing with keys no longer used."""
        now = self._clock()
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        async with self._db.transaction() as session:
            if not self._db.is_sqlite and not await session.scalar(_SWEEP_LOCK):
                return  # another node is sweeping now
            await session.execute(delete(CounterEvent).where(CounterEvent.expires_at <= now))
            await session.execute(delete(CounterSlot).where(CounterSlot.expires_at <= now))


def _live(table: type[CounterEvent | CounterSlot], key: str, now: float) -> tuple[ColumnElement[bool], ...]:
    """The rows of ``key`` that still count at ``now`` (expired ones may linger until a sweep)."""
    return table.key == key, table.expires_at > now


async def _insert_below(
    session: AsyncSession, table: type[CounterEvent | CounterSlot], limit: int, now: float, **values: object
) -> bool:
    """Insert a row of ``values`` if fewer than ``limit`` rows of its key are live; whether it was.

    One statement (``INSERT ... SELECT ... WHERE (SELECT count(*) ...) < limit``) instead of a
    count and an insert: a round trip less on the admitted path. The count is exact only because
    the caller holds the key's turn (:meth:`SqlCounters._serialise`).
    """
    live = select(func.count()).select_from(table).where(*_live(table, str(values["key"]), now))
    row = select(*(literal(value) for value in values.values())).where(live.scalar_subquery() < limit)
    # RETURNING says whether the row went in, on both databases (see ``insert_if_absent``).
    inserted: Result[Any] = await session.execute(
        insert(table).from_select(list(values), row).returning(literal_column("1"))
    )
    return inserted.first() is not None

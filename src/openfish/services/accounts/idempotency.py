"""``Idempotency-Key``: the same key with the same request returns the first answer, once made.

The first request with a key reserves it (a row with no answer yet); its successful answer is
stored. A retry with the same key and the same method, path and body gets that answer back and
does no new work; with a different request it gets 409; while the first is still running, 409
too. A failed first request frees the key so the client can retry it. Keys expire after
``jobs.idempotency_ttl_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from openfish.config import Settings
from openfish.errors import Conflict, InvalidRequest
from openfish.store.database import Database
from openfish.store.models import IdempotencyRecord, utcnow

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a keyed request."""

    status_code: int
    body: Any


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for a key."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyService:
    """Reserves keys, stores first answers, replays them."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    async def begin(self, account_id: str, key: str, fingerprint: str) -> StoredAnswer | None:
        """Reserve ``key`` for this request (None), or the stored answer of the first one."""
        if not _KEY.match(key):
            raise InvalidRequest("Idempotency-Key: 1-255 visible ASCII characters")
        now = self._clock()
        async with self._db.transaction() as session:
            record = await session.get(IdempotencyRecord, (account_id, key))
            if record is not None and record.expires_at <= now:
                await session.delete(record)
                await session.flush()
                record = None
            if record is None:
                ttl = timedelta(seconds=self._settings.jobs.idempotency_ttl_seconds)
                session.add(
                    IdempotencyRecord(
                        account_id=account_id,
                        key=key,
                        request_hash=fingerprint,
                        created_at=now,
                        expires_at=now + ttl,
                    )
                )
                return None
            if record.request_hash != fingerprint:
                raise Conflict("Idempotency-Key was already used with a different request")
            if record.status_code is None or record.response_body is None:
                raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly")
            return StoredAnswer(status_code=record.status_code, body=json.loads(record.response_body))

    async def complete(self, account_id: str, key: str, status_code: int, body: Any) -> None:
        """Store the first request's answer."""
        async with self._db.transaction() as session:
            record = await session.get(IdempotencyRecord, (account_id, key))
            if record is not None:
                record.status_code = status_code
                record.response_body = json.dumps(body, separators=(",", ":"), default=str)

    async def abandon(self, account_id: str, key: str) -> None:
        """Free the key after the first request failed, so a retry can do the work."""
        async with self._db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.account_id == account_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status_code.is_(None),
                )
            )

    async def purge_expired(self) -> int:
        """Delete expired keys; returns how many."""
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= self._clock())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

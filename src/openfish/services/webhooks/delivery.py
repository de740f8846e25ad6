"""Webhook delivery: events are queued in the caller's transaction, then signed and POSTed.

A delivery is claimed by a conditional ``UPDATE`` that bumps ``attempts`` and sets a lease
(:mod:`openfish.store.leases`), so two processes never send it at once; a result is recorded only
while ``attempts`` still holds the claimed value. Sending one attempt, with its checks against DNS
rebinding, is :mod:`openfish.services.webhooks.sender`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.config import Settings
from openfish.errors import NotFound
from openfish.services.webhooks import rules
from openfish.services.webhooks.sender import Outcome, WebhookSender, describe_failure
from openfish.store.database import UNAVAILABLE, Database, insert_if_absent
from openfish.store.leases import lease_expiry, lease_free, take_row
from openfish.store.models import Account, WebhookDelivery, utcnow

logger = logging.getLogger("openfish.webhooks")

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
#: ``last_error`` of a delivery whose every attempt ended without a recorded result.
GAVE_UP = "gave up: every attempt ended without a recorded result (the sender stopped)"
#: How long a claim outlives the attempt's own deadline before another process may take it over.
LEASE_MARGIN = timedelta(seconds=60)
#: The longest wait between two delivery passes while the database is unavailable.
MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True)
class _Claim:
    id: int
    account_id: str
    event_id: str
    url: str
    payload: str
    attempts: int


class WebhookService:
    """Queues job events for an account's webhook and delivers them, signed, with retries."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._rules = settings.webhooks
        self._clock = clock
        self._sender = WebhookSender(self._rules, clock)

    async def secret_for(self, account_id: str) -> str:
        """The account's signing secret, made and stored on first use (concurrent callers agree)."""
        async with self._db.session() as session:
            secret = await session.scalar(select(Account.webhook_secret).where(Account.id == account_id))
        if secret is not None:
            return secret
        async with self._db.transaction() as session:
            await session.execute(
                update(Account)
                .where(Account.id == account_id, Account.webhook_secret.is_(None))
                .values(webhook_secret="whsec_" + secrets.token_urlsafe(32))
                .execution_options(synchronize_session=False)
            )
            secret = await session.scalar(select(Account.webhook_secret).where(Account.id == account_id))
        if secret is None:
            raise NotFound(f"account {account_id} does not exist")
        return secret

    async def enqueue(
        self, account_id: str, event_id: str, event: dict[str, Any], session: AsyncSession | None = None
    ) -> bool:
        """Queue ``event`` (JSON-serialisable, with a ``type``) for the account's webhook, if any.

        Returns False when the account has no webhook or ``event_id`` was queued before. With
        ``session`` the row joins that transaction (commit it with the job's terminal state).
        """
        if not isinstance(event.get("type"), str):
            raise ValueError("a webhook event needs a string `type`")
        if session is None:
            async with self._db.transaction() as own:
                return await self._enqueue(own, account_id, event_id, event)
        return await self._enqueue(session, account_id, event_id, event)

    async def _enqueue(
        self, session: AsyncSession, account_id: str, event_id: str, event: dict[str, Any]
    ) -> bool:
        url = await session.scalar(select(Account.webhook_url).where(Account.id == account_id))
        if not url:
            return False
        now = self._clock()
        created = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
        body = {"id": event_id, "type": event["type"], "createdAt": created}
        body.update({key: value for key, value in event.items() if key not in body})
        values = {
            "account_id": account_id,
            "event_id": event_id,
            "url": url,
            "payload": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        # The unique event_id makes a repeat a no-op inside the caller's transaction.
        return await insert_if_absent(session, WebhookDelivery, values, key=["event_id"])

    async def deliver_due(self, limit: int = 10) -> int:
        """Claim up to ``limit`` due deliveries, attempt them concurrently; how many were attempted."""
        claims = await self._claim(limit)
        results = await asyncio.gather(*(self._attempt(claim) for claim in claims), return_exceptions=True)
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("webhook delivery %s: attempt aborted", claim.event_id, exc_info=result)
        return len(claims)

    async def run(self, stop: asyncio.Event, interval: float = 1.0, limit: int = 10) -> None:
        """Deliver due events until ``stop`` is set; a failed pass is logged and the loop goes on.
        While the database is unavailable it waits longer each time (up to MAX_BACKOFF_SECONDS)."""
        backoff = interval
        while not stop.is_set():
            attempted = 0
            try:
                attempted = await self.deliver_due(limit)
            except UNAVAILABLE as exc:
                logger.warning(
                    "webhook delivery: database unavailable (%s); retrying in %.1f s", exc, backoff
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(2 * backoff, MAX_BACKOFF_SECONDS)
                continue
            except Exception:
                logger.exception("webhook delivery pass failed")
            backoff = interval
            if attempted >= limit:
                continue  # more may be due: no pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def aclose(self) -> None:
        """Close the HTTP client (call at shutdown)."""
        await self._sender.aclose()

    async def _claim(self, limit: int) -> list[_Claim]:
        now = self._clock()
        lease = lease_expiry(now, self._rules.timeout_seconds, LEASE_MARGIN)
        free = lease_free(WebhookDelivery.lease_expires_at, now)
        limit_reached = WebhookDelivery.attempts >= self._rules.max_attempts
        due = (
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            free,
            WebhookDelivery.attempts < self._rules.max_attempts,
        )
        claims: list[_Claim] = []
        async with self._db.transaction() as session:
            # Senders that died mid-attempt left no result: once the last lease has run out, their
            # deliveries have used every attempt and end here rather than being claimed forever.
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.status == PENDING, limit_reached, free)
                .values(status=FAILED, lease_expires_at=None, last_error=GAVE_UP)
                .execution_options(synchronize_session=False)
            )
            rows = await session.scalars(
                select(WebhookDelivery)
                .where(*due)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)  # PostgreSQL: workers take different rows
            )
            for row in rows.all():
                if await take_row(
                    session, row, WebhookDelivery.attempts, still=due, values={"lease_expires_at": lease}
                ):
                    claims.append(
                        _Claim(row.id, row.account_id, row.event_id, row.url, row.payload, row.attempts + 1)
                    )
        return claims

    async def _attempt(self, claim: _Claim) -> None:
        secret: str | None = None
        try:
            secret = await self.secret_for(claim.account_id)
            async with asyncio.timeout(self._rules.timeout_seconds):
                outcome = await self._sender.send(claim.url, claim.event_id, claim.payload, secret)
        except TimeoutError:
            outcome = Outcome(error=f"no answer within {self._rules.timeout_seconds:g} s")
        except Exception as exc:
            # Whatever went wrong, the attempt must be recorded as failed: left unrecorded, the row
            # keeps status pending and is claimed again after every lease, past max_attempts,
            # forever. Cancellation is a BaseException and still propagates.
            logger.warning(
                "webhook delivery %s attempt %d failed unexpectedly",
                claim.event_id,
                claim.attempts,
                exc_info=exc,
            )
            outcome = Outcome(error=describe_failure(exc, secret))
        await self._record(claim, outcome)

    async def _record(self, claim: _Claim, outcome: Outcome) -> None:
        now = self._clock()
        values: dict[str, Any] = {"lease_expires_at": None}
        # The column holds 500 characters (PostgreSQL enforces it): a longer error, e.g. one that
        # quotes a long host, must not make the result impossible to save.
        error = None if outcome.error is None else outcome.error[:500]
        values.update(last_status_code=outcome.status_code, last_error=error)
        if outcome.delivered:
            values.update(status=DELIVERED, delivered_at=now)
        elif outcome.permanent or claim.attempts >= self._rules.max_attempts:
            values.update(status=FAILED)
        else:
            delay = rules.backoff_seconds(
                claim.attempts, self._rules.retry_base_seconds, self._rules.retry_max_seconds
            )
            values.update(next_attempt_at=now + timedelta(seconds=delay))
        async with self._db.transaction() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.id,
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.attempts == claim.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            logger.warning("webhook delivery %s was taken over before its result was saved", claim.event_id)
        elif not outcome.delivered:
            logger.info("webhook delivery %s attempt %d: %s", claim.event_id, claim.attempts, outcome.error)

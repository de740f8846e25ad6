"""ORM tables. Kept to types and constraints that SQLite and PostgreSQL both honour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Account(Base):
    """A customer: its tier, balance, quota state, feature flags and webhook."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(40))
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Per-account override of the tier's monthly quota (credits); NULL means the tier's value.
    quota_override: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Calendar month ("YYYY-MM", UTC) that ``quota_used`` counts.
    quota_period: Mapped[str] = mapped_column(String(7), default="")
    quota_used: Mapped[int] = mapped_column(BigInteger, default=0)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    #: Key of the HMAC-SHA256 signature on webhook deliveries (made when a webhook is first set).
    webhook_secret: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """A bearer token; only a hash of its secret part is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LedgerEntry(Base):
    """One append-only movement of credits. ``amount`` is the change to the balance.

    ``(kind, reference)`` is unique: the same charge, hold, capture or release can never be
    written twice, whoever retries it.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("kind", "reference", name="uq_ledger_kind_reference"),
        Index("ix_ledger_account_day", "account_id", "day"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    #: Credits this entry counts as used (charges and captures); 0 for the others.
    credits_used: Mapped[int] = mapped_column(BigInteger, default=0)
    surface: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Billable units of the surface (characters, seconds, ...), for usage reports.
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    #: UTC day ("YYYY-MM-DD") so usage groups by day with portable SQL.
    day: Mapped[str] = mapped_column(String(10))
    memo: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditHold(Base):
    """Credits set aside for an async job until it is captured or released (once)."""

    __tablename__ = "credit_holds"

    reference: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    surface: Mapped[str | None] = mapped_column(String(40), nullable=True)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    #: "held", "captured" or "released".
    status: Mapped[str] = mapped_column(String(16), default="held")
    quota_period: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Voice(Base):
    """A voice made from an account's reference audio."""

    __tablename__ = "voices"
    __table_args__ = (Index("ix_voices_visibility_status", "visibility", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    #: "private" (owner only), "unlist" (anyone with the id), "public" (listed for everyone).
    visibility: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    #: "processing" → "ready" | "failed".
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: The built-in voice the conversion starts from, and the converter that moves it.
    base_voice: Mapped[str] = mapped_column(String(200))
    converter: Mapped[str] = mapped_column(String(40))
    reference_count: Mapped[int] = mapped_column(Integer)
    speech_seconds: Mapped[float] = mapped_column(Float)
    transcripts: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Labels for finding the voice (the Fish Audio API's model tags), in the order given.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Content type of the voice's cover image (a blob beside its clips); None: no cover.
    cover_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VoiceUsage(Base):
    """How often one account spoke with one voice (made or built-in): the Fish Audio API's
    ``task_count`` is the sum over accounts, and its ``score`` sort counts the accounts."""

    __tablename__ = "voice_usage"

    #: A made voice's id or a built-in voice's (rows of a deleted made voice go with it).
    voice_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    #: Synthesis requests that named the voice and were charged (sync, stored, jobs, realtime).
    task_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """A unit of async work (TTS now; lip sync and long transcriptions later).

    Every change of state is a conditional update on ``(id, attempt, status)``, so a worker whose
    lease expired can never overwrite the work of the worker that took the job over.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after"),
        Index("ix_jobs_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(40))
    #: queued → processing → succeeded | failed; queued → canceled.
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Percent done (0-100) as the running attempt last reported it.
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The job's id in the queue back-end that dispatches it, when that is not this table itself
    #: (procrastinate's ``procrastinate_jobs.id``); None on the embedded queue.
    queue_ref: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdempotencyRecord(Base):
    """The first answer to a creating request sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 of method, path and body: the same key with another request is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64))
    #: NULL while the first request is still being served.
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebhookDelivery(Base):
    """One webhook event for one account, delivered (and retried) until it lands or gives up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_webhook_event"),
        Index("ix_webhook_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    #: Unique per event (e.g. ``job_…:succeeded``) so an event is queued once, whoever retries.
    event_id: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[str] = mapped_column(Text)
    #: pending → delivered | failed.
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ServerSecret(Base):
    """A secret every node of one deployment shares (e.g. ``url_signing``), made once, never rotated
    in place. ``value`` is base64 text so the column is a plain string on every database."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CounterEvent(Base):
    """One counted hit of a sliding window (``store/sql_counters.py``), kept until it leaves the
    window. Times are Unix seconds, so that every node's arithmetic on them is the same."""

    __tablename__ = "counter_events"
    __table_args__ = (
        Index("ix_counter_events_key_expires", "key", "expires_at"),
        Index("ix_counter_events_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(200))
    #: When the hit leaves its window (its time plus the window), Unix seconds.
    expires_at: Mapped[float] = mapped_column(Double)


class CounterSlot(Base):
    """One slot taken (``store/sql_counters.py``): deleted when given back, or no longer counted
    once expired (its node died holding it)."""

    __tablename__ = "counter_slots"
    __table_args__ = (Index("ix_counter_slots_key_expires", "key", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    #: The instance that took it (host:pid:random), for operators reading the table.
    holder: Mapped[str] = mapped_column(String(200))
    #: When it stops counting if never given back, Unix seconds.
    expires_at: Mapped[float] = mapped_column(Double)

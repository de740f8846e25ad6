"""The sections of the settings: one model per part of the server, each a field of
:class:`openfish.config.Settings` (set from ``OPENFISH_<SECTION>__<FIELD>``).

A service that needs only its own section takes that model instead of the whole ``Settings``.
The speech engines' sections (TTS, voices, ASR, realtime, lip sync) are in
:mod:`openfish.config.speech`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

#: The day this release marked the legacy paths deprecated: the default of ``Deprecation``.
LEGACY_DEPRECATED_ON = date(2026, 11, 27)


class TierSettings(BaseModel):
    """Limits that apply to every account of one tier."""

    requests_per_minute: int = Field(default=60, ge=1)
    max_concurrent_requests: int = Field(default=4, ge=1)
    max_realtime_sessions: int = Field(default=2, ge=0, description="Open realtime WebSocket sessions.")
    monthly_quota: int | None = Field(
        default=None,
        ge=0,
        description="Credits an account may spend through the API per calendar month (UTC); "
        "None means no cap beyond the balance.",
    )


class DatabaseSettings(BaseModel):
    """Where accounts, the ledger and jobs live."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL: sqlite+aiosqlite:///… or postgresql://user:password@host/db "
            "(psycopg 3); defaults to SQLite in the data directory."
        ),
    )
    echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)


class LimitsSettings(BaseModel):
    """Where the counts behind request rate, concurrency and realtime session limits live."""

    counters: Literal["memory", "database"] | None = Field(
        default=None,
        description="memory: in this process (exact for one node, no database work); database: on "
        "the database, shared by every node on it, so that a tier's limits hold across nodes. "
        "Unset: memory on SQLite, database on PostgreSQL.",
    )


class StorageSettings(BaseModel):
    """Where blobs (stored audio, job results, uploads, voices) are kept. S3 values left unset come
    from the standard AWS environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ALLOW_HTTP``) and credential chain."""

    url: str | None = Field(
        default=None,
        description="s3://bucket/prefix for an S3-compatible store; defaults to the data directory.",
    )
    endpoint: str | None = Field(
        default=None,
        description="S3 API URL (MinIO, R2, ...); AWS itself when neither this nor AWS_ENDPOINT_URL is set.",
    )
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    allow_http: bool = Field(default=False, description="Allow an http:// endpoint (else AWS_ALLOW_HTTP).")
    presigned_downloads: bool = Field(
        default=True,
        description="Send clients to presigned S3 URLs (307) instead of streaming blobs through the app; "
        "turn off when clients cannot reach the endpoint.",
    )


class HttpSettings(BaseModel):
    """Limits on what the HTTP layer accepts."""

    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    trust_client_request_id: bool = True


class SurfaceSettings(BaseModel):
    """Which API surfaces this server exposes; a disabled one is absent from the schema."""

    profile: bool = True
    usage: bool = True
    tts: bool = True
    voices: bool = True
    asr: bool = True
    files: bool = True
    lipsync: bool = True
    fish_compat: bool = Field(
        default=True,
        description="The official Fish Audio API at the server root (/v1/tts, /v1/tts/live, /v1/asr, "
        "/model, /wallet), for the fish-audio-sdk clients; docs/clients.md.",
    )
    openai_compat: bool = Field(
        default=True,
        description="The OpenAI audio API under /v1 (/v1/audio/speech, /v1/audio/transcriptions, "
        "/v1/audio/translations, /v1/models), for openai clients; docs/clients.md. Its speech and "
        "transcription paths also need the tts and asr surfaces.",
    )
    legacy: bool = Field(
        default=True,
        description="The legacy paths (/api/open/... outside /api/open/v1, and the legacy realtime "
        "socket), each also behind its own surface; off, they answer 404 and leave the schema while "
        "their v1 paths stay. docs/migration.md.",
    )
    legacy_deprecation: date = Field(
        default=LEGACY_DEPRECATED_ON,
        description="The day (UTC) the legacy paths were deprecated, sent on each of their answers "
        "as `Deprecation: @<unix seconds>` (RFC 9745).",
    )
    legacy_sunset: date | None = Field(
        default=None,
        description="The day (UTC) the legacy paths may stop being served; when set, each of their "
        "answers carries it as `Sunset: <HTTP-date>` (RFC 8594).",
    )

    @model_validator(mode="after")
    def _sunset_after_deprecation(self) -> SurfaceSettings:
        if self.legacy_sunset is not None and self.legacy_sunset < self.legacy_deprecation:
            raise ValueError("legacy_sunset must not be before legacy_deprecation")
        return self


class JobSettings(BaseModel):
    """Async jobs: attempts, leases, the worker inside ``openfish serve``, idempotency keys."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    lease_seconds: float = Field(default=30.0, ge=2.0)
    embedded_worker: bool = Field(
        default=True,
        description="Run background work (jobs, webhook deliveries, maintenance) inside `openfish serve`.",
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    queue: Literal["database", "procrastinate"] | None = Field(
        default=None,
        description="database: workers find jobs by polling the jobs table; procrastinate (PostgreSQL "
        "only): procrastinate dispatches them, waking workers on any node at once (LISTEN/NOTIFY). "
        "Unset: database on SQLite, procrastinate on PostgreSQL.",
    )
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)


class BootstrapSettings(BaseModel):
    """The first account, created on the first start of an empty database."""

    enabled: bool = True
    tier: str = "pro"
    credits: int = Field(default=100_000, ge=0)
    name: str = "owner"
    features: list[str] = Field(
        default_factory=lambda: ["realtime_tts", "realtime_asr"],
        description="Rollout flags switched on for the first account (the operator's own).",
    )


class WebhookSettings(BaseModel):
    """Rules for the webhook URL an account may register, and how events are delivered to it."""

    allow_http: bool = False
    allow_private_targets: bool = False
    max_url_length: int = Field(default=2048, ge=16)
    max_attempts: int = Field(default=8, ge=1, le=50, description="Attempts before a delivery fails.")
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Deadline of one attempt: resolve, connect, send, read."
    )
    retry_base_seconds: float = Field(default=10.0, gt=0, description="Wait after the first failure.")
    retry_max_seconds: float = Field(default=3600.0, gt=0, description="Cap of the doubling wait.")
    max_response_bytes: int = Field(
        default=64 << 10, ge=0, description="Most of a receiver's answer read before hanging up."
    )


class MediaFetchSettings(BaseModel):
    """Fetching media URLs that clients give (``audioUrl``, ``videoUrl``); see ``docs/api.md``."""

    allow_external_urls: bool = Field(default=False, description="Whether media URLs are fetched at all.")
    allow_http: bool = Field(default=False, description="Allow plain http (https is always allowed).")
    allow_private_targets: bool = Field(
        default=False, description="Allow loopback/private/link-local addresses (testing only)."
    )
    max_bytes: int = Field(default=200 << 20, ge=1, description="Largest body read before refusing.")
    timeout_seconds: float = Field(default=60.0, gt=0, description="Deadline of the whole fetch.")
    max_redirects: int = Field(default=3, ge=0, le=20)


class RetentionSettings(BaseModel):
    """How long stored results stay on disk (swept by the maintenance loop every 10 minutes)."""

    stored_audio_seconds: int = Field(
        default=86_400, ge=3600, description="cache=true audio, counted from its last use."
    )
    job_results_seconds: int = Field(
        default=7 * 86_400, ge=3600, description="TTS job audio and lip-sync videos, from when made."
    )
    scratch_seconds: int = Field(default=86_400, ge=3600, description="Leftovers of interrupted work.")

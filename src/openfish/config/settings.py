"""The root of the settings: :class:`Settings`, read from the environment, and the parsing of the
configured URL-signing key."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from openfish.config.sections import (
    BootstrapSettings,
    DatabaseSettings,
    HttpSettings,
    JobSettings,
    LimitsSettings,
    MediaFetchSettings,
    RetentionSettings,
    StorageSettings,
    SurfaceSettings,
    TierSettings,
    WebhookSettings,
)
from openfish.config.speech import AsrSettings, LipSyncSettings, RealtimeSettings, TtsSettings, VoiceSettings


def _default_tiers() -> dict[str, TierSettings]:
    return {
        "free": TierSettings(
            requests_per_minute=30, max_concurrent_requests=2, max_realtime_sessions=1, monthly_quota=10_000
        ),
        "pro": TierSettings(requests_per_minute=300, max_concurrent_requests=8, max_realtime_sessions=4),
        "enterprise": TierSettings(
            requests_per_minute=3000, max_concurrent_requests=64, max_realtime_sessions=32
        ),
    }


#: Listening addresses that local clients reach by a loopback name.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})  # noqa: S104


#: Fewest bytes a configured signing key may have: the size of the HMAC-SHA256 output it keys.
MIN_SIGNING_KEY_BYTES = 32
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def decode_signing_key(text: str) -> bytes:
    """The bytes of a configured signing key, written as hex (``openssl rand -hex 32``) or base64,
    standard or URL-safe, padded or not (``openssl rand -base64 32``); surrounding whitespace is
    ignored. Raises ValueError (never quoting the text) unless it holds at least 32 bytes."""
    text = text.strip()
    # Hex digits are also base64 characters: an even run of them is read as hex, which is what
    # `openssl rand -hex` writes (a random base64 key of 32+ bytes is all hex digits with odds
    # below 1e-19, and a padded one never is).
    if _HEX.fullmatch(text):
        key = bytes.fromhex(text)
    elif _BASE64.fullmatch(text):
        unpadded = text.rstrip("=").replace("+", "-").replace("/", "_")
        try:
            key = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        except binascii.Error:
            raise ValueError("signing_key is not valid base64") from None
    else:
        raise ValueError("signing_key must be hex or base64")
    if len(key) < MIN_SIGNING_KEY_BYTES:
        raise ValueError(f"signing_key must hold at least {MIN_SIGNING_KEY_BYTES} bytes, not {len(key)}")
    return key


class Settings(BaseSettings):
    """The whole configuration of one openfish server."""

    # hide_input_in_errors: some settings are secrets (signing_key, a database URL's password), and
    # a refused value must not end up in a terminal or a log; the error still names field and rule.
    model_config = SettingsConfigDict(
        env_prefix="OPENFISH_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"

    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    http: HttpSettings = HttpSettings()
    limits: LimitsSettings = LimitsSettings()
    surfaces: SurfaceSettings = SurfaceSettings()
    bootstrap: BootstrapSettings = BootstrapSettings()
    webhooks: WebhookSettings = WebhookSettings()
    tts: TtsSettings = TtsSettings()
    voices: VoiceSettings = VoiceSettings()
    jobs: JobSettings = JobSettings()
    asr: AsrSettings = AsrSettings()
    media_fetch: MediaFetchSettings = MediaFetchSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    lipsync: LipSyncSettings = LipSyncSettings()
    retention: RetentionSettings = RetentionSettings()
    public_url: str | None = Field(
        default=None, description="Base URL clients reach this server at (for URLs in webhooks)."
    )
    public_url_aliases: list[str] = Field(
        default_factory=list,
        description="Other base URLs that reach this server (other names behind a proxy): media URLs "
        "under them are read from this server's own store like those under public_url.",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="Key of signed URLs (stored audio, lip-sync and job results): base64 or hex, at "
        "least 32 bytes; all nodes must share it. Unset, the key is made once and kept in the database.",
    )
    tiers: dict[str, TierSettings] = Field(default_factory=_default_tiers)

    @field_validator("signing_key")
    @classmethod
    def _signing_key_decodes(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            decode_signing_key(key.get_secret_value())
        return key

    @field_validator("tiers")
    @classmethod
    def _tiers_not_empty(cls, tiers: dict[str, TierSettings]) -> dict[str, TierSettings]:
        if not tiers:
            raise ValueError("at least one tier must be configured")
        return tiers

    @model_validator(mode="after")
    def _bootstrap_tier_exists(self) -> Settings:
        if self.bootstrap.tier not in self.tiers:
            raise ValueError(f"bootstrap.tier {self.bootstrap.tier!r} is not a configured tier")
        return self

    @property
    def base_url(self) -> str:
        """``public_url`` or the address the server listens on, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def scratch_dir(self) -> Path:
        """Where files that only live while one piece of work runs are made (renders, copies of
        blobs for engines that read files); the maintenance loop clears what crashes left."""
        return self.data_dir / "tmp"

    @property
    def own_base_urls(self) -> tuple[str, ...]:
        """Every base URL that names this server: ``base_url``, the aliases, and the loopback
        names of the listening port when it listens on loopback or on every interface."""
        bases = [self.base_url, *(alias.rstrip("/") for alias in self.public_url_aliases)]
        if self.host in _LOCAL_HOSTS:
            bases += [f"http://{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")]
        return tuple(dict.fromkeys(bases))

    @property
    def signing_key_bytes(self) -> bytes | None:
        """The configured URL-signing key, decoded; None when the database's key is to be used."""
        return None if self.signing_key is None else decode_signing_key(self.signing_key.get_secret_value())

    @model_validator(mode="after")
    def _procrastinate_needs_postgresql(self) -> Settings:
        if self.jobs.queue == "procrastinate" and self.database_url.startswith("sqlite"):
            raise ValueError("jobs.queue procrastinate needs a PostgreSQL database.url")
        return self

    @property
    def job_queue(self) -> str:
        """The job queue back-end (``jobs.queue``; unset, procrastinate on PostgreSQL)."""
        if self.jobs.queue is not None:
            return self.jobs.queue
        return "database" if self.database_url.startswith("sqlite") else "procrastinate"

    @property
    def shared_counters(self) -> bool:
        """Whether limits count on the database, shared by every node (``limits.counters``; unset,
        whenever the database is not SQLite, since only a server database is shared by nodes)."""
        if self.limits.counters is not None:
            return self.limits.counters == "database"
        return not self.database_url.startswith("sqlite")

    @property
    def database_url(self) -> str:
        """The configured database URL, or SQLite inside the data directory. A plain PostgreSQL URL
        (``postgresql://`` or ``postgres://``, as most tools write it) gets the psycopg driver."""
        if self.database.url:
            scheme, separator, rest = self.database.url.partition("://")
            if separator and scheme in ("postgresql", "postgres"):
                return f"postgresql+psycopg://{rest}"
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'openfish.db').resolve()}"

"""Accounts and their API tokens: creation, lookup, flags, webhook, authentication."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from openfish.config import Settings
from openfish.errors import InvalidRequest, NotFound, Unauthorized
from openfish.services.accounts.billing import BillingService
from openfish.services.accounts.tokens import make_token, parse_token, secret_matches
from openfish.services.runtime.ids import new_id
from openfish.store.database import Database
from openfish.store.models import Account, ApiToken, utcnow

FEATURE_FLAG_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Writing last-used time on every request would make each read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    """The account a request acts for, as resolved from its bearer token."""

    account_id: str
    tier: str
    token_id: str
    features: dict[str, bool] = field(default_factory=dict)

    def has_feature(self, name: str) -> bool:
        """Whether a rollout flag is on for this account."""
        return bool(self.features.get(name, False))


@dataclass(frozen=True)
class IssuedToken:
    """A token as shown once at creation."""

    token_id: str
    account_id: str
    plaintext: str


class AccountService:
    """Account and token management; the CLI and the API both go through here."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        billing: BillingService,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._settings = settings
        self._billing = billing
        self._clock = clock

    async def create_account(self, name: str, tier: str, credits: int = 0) -> Account:
        """A new account; starting credits enter through the ledger like any top-up."""
        self._check_tier(tier)
        if not name.strip():
            raise InvalidRequest("name must not be empty")
        account = Account(
            id=new_id("user"),
            name=name.strip(),
            tier=tier,
            credits=0,
            quota_period="",
            quota_used=0,
            features={},
        )
        async with self._db.transaction() as session:
            session.add(account)
        if credits > 0:
            await self._billing.top_up(account.id, credits, memo="initial credits")
        return await self.get_account(account.id)

    async def get_account(self, account_id: str) -> Account:
        """The account, or NotFound."""
        async with self._db.session() as session:
            account = await session.get(Account, account_id)
        if account is None:
            raise NotFound(f"account {account_id} does not exist")
        return account

    async def list_accounts(self) -> Sequence[Account]:
        """Every account, oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(select(Account).order_by(Account.created_at, Account.id))
            return rows.all()

    async def count_accounts(self) -> int:
        """How many accounts exist."""
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Account)) or 0)

    async def set_tier(self, account_id: str, tier: str) -> Account:
        """Move an account to another configured tier."""
        self._check_tier(tier)
        await self._update(account_id, tier=tier)
        return await self.get_account(account_id)

    async def set_feature(self, account_id: str, flag: str, enabled: bool) -> Account:
        """Turn a rollout flag (e.g. ``realtime_tts``) on or off for an account."""
        if not FEATURE_FLAG_RE.match(flag):
            raise InvalidRequest("a feature flag is lower-case letters, digits and underscores")
        async with self._db.transaction() as session:
            account = await session.get(Account, account_id)
            if account is None:
                raise NotFound(f"account {account_id} does not exist")
            account.features = {**account.features, flag: enabled}
        return await self.get_account(account_id)

    async def set_webhook(self, account_id: str, url: str | None) -> Account:
        """Store (or clear, with None) the account's webhook URL; validated by the caller."""
        await self._update(account_id, webhook_url=url)
        return await self.get_account(account_id)

    async def create_token(self, account_id: str, name: str = "") -> IssuedToken:
        """A new token for the account; the plaintext exists only in the return value."""
        token_id = new_id("tok")
        plaintext, secret_hash = make_token(token_id)
        async with self._db.transaction() as session:
            if await session.get(Account, account_id) is None:
                raise NotFound(f"account {account_id} does not exist")
            session.add(ApiToken(id=token_id, account_id=account_id, name=name, secret_hash=secret_hash))
        return IssuedToken(token_id=token_id, account_id=account_id, plaintext=plaintext)

    async def list_tokens(self, account_id: str | None = None) -> Sequence[ApiToken]:
        """Tokens (never their secrets), optionally of one account."""
        query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
        if account_id is not None:
            query = query.where(ApiToken.account_id == account_id)
        async with self._db.session() as session:
            return (await session.scalars(query)).all()

    async def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke a token; revoking twice keeps the first revocation time."""
        async with self._db.transaction() as session:
            token = await session.get(ApiToken, token_id)
            if token is None:
                raise NotFound(f"token {token_id} does not exist")
            if token.revoked_at is None:
                token.revoked_at = self._clock()
            return token

    async def authenticate(self, presented: str) -> Principal:
        """The principal behind a bearer token; Unauthorized for anything else."""
        parsed = parse_token(presented)
        if parsed is None:
            raise Unauthorized("The API token is malformed.")
        async with self._db.session() as session:
            token = await session.get(ApiToken, parsed.token_id)
            # Hash even when the id is unknown so both failures cost the same.
            valid = secret_matches(parsed.secret, token.secret_hash if token else "0" * 64)
            if token is None or not valid or token.revoked_at is not None:
                raise Unauthorized("The API token is invalid or has been revoked.")
            account = await session.get(Account, token.account_id)
            if account is None:
                raise Unauthorized("The API token is invalid or has been revoked.")
            principal = Principal(
                account_id=account.id,
                tier=account.tier,
                token_id=token.id,
                features={k: bool(v) for k, v in account.features.items()},
            )
            last_used = token.last_used_at
        now = self._clock()
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            async with self._db.transaction() as session:
                await session.execute(
                    update(ApiToken).where(ApiToken.id == parsed.token_id).values(last_used_at=now)
                )
        return principal

    async def bootstrap(self) -> tuple[Account, IssuedToken] | None:
        """On an empty database, the first account and its token; otherwise None."""
        config = self._settings.bootstrap
        if not config.enabled:
            return None
        # Nodes starting together on an empty database would each count none and each make one.
        async with self._db.exclusive("bootstrap"):
            if await self.count_accounts() > 0:
                return None
            account = await self.create_account(config.name, config.tier, config.credits)
            for flag in config.features:
                account = await self.set_feature(account.id, flag, True)
            return account, await self.create_token(account.id, name="bootstrap")

    async def _update(self, account_id: str, **values: object) -> None:
        async with self._db.transaction() as session:
            result = await session.execute(update(Account).where(Account.id == account_id).values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"account {account_id} does not exist")

    def _check_tier(self, tier: str) -> None:
        if tier not in self._settings.tiers:
            known = ", ".join(sorted(self._settings.tiers))
            raise InvalidRequest(f"unknown tier {tier!r}; configured tiers: {known}")

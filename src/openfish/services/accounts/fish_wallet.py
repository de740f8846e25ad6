"""The Fish Audio wallet (``/wallet/self/...``) read from an account: its credit balance, and this
month's quota as the "package" the Fish Audio API reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from openfish.services.accounts.billing import BillingService, quota_period
from openfish.store.models import Account


@dataclass(frozen=True)
class Package:
    """This calendar month's allowance (UTC): what it holds, what is left, when it ends."""

    id: str
    user_id: str
    type: str
    total: int
    balance: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The first instant of ``now``'s calendar month (UTC) and of the next one."""
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def monthly_package(account: Account, billing: BillingService, now: datetime) -> Package:
    """The account's package for the month of ``now``.

    With a monthly quota (the tier's or the account's own), the package is that quota: ``total``
    the quota, ``balance`` what may still be spent this month (capped by the balance, like
    ``api_quota_remaining``). Without one, the balance is the only limit: ``total`` is what was
    spent this month plus the balance, ``balance`` the balance. ``type`` is the tier.
    """
    start, end = month_bounds(now)
    used = account.quota_used if account.quota_period == quota_period(now) else 0
    quota = billing.monthly_quota(account)
    total = quota if quota is not None else used + account.credits
    return Package(
        id=f"{account.id}:{quota_period(now)}",
        user_id=account.id,
        type=account.tier,
        total=total,
        balance=billing.quota_remaining(account),
        created_at=start,
        updated_at=max(account.updated_at, start),
        finished_at=end,
    )

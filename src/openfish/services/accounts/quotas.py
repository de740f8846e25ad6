"""Monthly quotas: the month a quota counts, an account's quota and what is left of it, and the
guarded debit that enforces quota and balance together.

A quota is the account's own (``quota_override``) or else its tier's ``monthly_quota``; neither
means the balance is the only limit. What was used counts only in the calendar month (UTC) it was
used in (``accounts.quota_period``). :class:`openfish.services.accounts.billing.BillingService`
is the only user of the statement here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import BigInteger, ColumnElement, String, Update, bindparam, case, func, or_, update

from openfish.config import TierSettings
from openfish.services.accounts.ledger import ACCOUNTS


def quota_period(moment: datetime) -> str:
    """The calendar month (UTC) a quota counts, as ``YYYY-MM``."""
    return moment.strftime("%Y-%m")


def quota_renews_in(moment: datetime) -> int:
    """Whole seconds from ``moment`` until the next quota month (quotas count per calendar month,
    UTC) begins: at least 1."""
    moment = moment.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return max(1, math.ceil((datetime(year, month, 1, tzinfo=UTC) - moment).total_seconds()))


def quota_of(tiers: Mapping[str, TierSettings], tier_name: str, override: int | None) -> int | None:
    """The monthly quota in credits of an account of ``tier_name`` with ``override``, or None when
    only the balance limits it."""
    if override is not None:
        return override
    tier = tiers.get(tier_name)
    return tier.monthly_quota if tier else None


def quota_left(quota: int | None, used: int, credits: int) -> int:
    """Credits that may still be spent this month: ``quota`` less ``used``, capped by ``credits``
    (the balance); the balance itself when there is no quota."""
    if quota is None:
        return credits
    return max(0, min(quota - used, credits))


def debit_statement(tiers: Mapping[str, TierSettings]) -> Update:
    """``UPDATE accounts`` taking ``:amount`` credits from account ``:account`` and counting them
    as used in quota month ``:period`` — only where the balance covers them and the monthly quota
    (the account's override, else its tier's in ``tiers``; none: no cap) allows them. It returns
    the account's balance, quota used, override and tier after the debit; no row: refused (or no
    such account). Built once per ``BillingService``, run with parameters."""
    tier_quotas = {name: tier.monthly_quota for name, tier in tiers.items() if tier.monthly_quota is not None}
    amount = bindparam("amount", type_=BigInteger())
    period = bindparam("period", type_=String())
    used_now: ColumnElement[int] = case((ACCOUNTS.c.quota_period == period, ACCOUNTS.c.quota_used), else_=0)
    quota: ColumnElement[int | None] = ACCOUNTS.c.quota_override
    if tier_quotas:
        quota = func.coalesce(quota, case(tier_quotas, value=ACCOUNTS.c.tier))
    return (
        update(ACCOUNTS)
        .where(
            ACCOUNTS.c.id == bindparam("account"),
            ACCOUNTS.c.credits >= amount,
            or_(quota.is_(None), used_now + amount <= quota),
        )
        .values(credits=ACCOUNTS.c.credits - amount, quota_used=used_now + amount, quota_period=period)
        .returning(ACCOUNTS.c.credits, ACCOUNTS.c.quota_used, ACCOUNTS.c.quota_override, ACCOUNTS.c.tier)
    )

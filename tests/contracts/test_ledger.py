"""The ledger contract, run against every database back-end (``DATABASE_BACKENDS``): a balance never
goes negative and money never moves twice, however calls interleave."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from openfish.errors import InsufficientCredits, NotFound, QuotaExceeded
from openfish.services.accounts.billing import HOLD_CAPTURED, HOLD_RELEASED
from openfish.store.models import Account, CreditHold, LedgerEntry
from tests.conftest import Harness


async def ledger_sum(harness: Harness, account_id: str) -> int:
    async with harness.services.db.session() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
        )
    return int(total or 0)


async def balance(harness: Harness, account_id: str) -> int:
    return (await harness.services.accounts.get_account(account_id)).credits


async def test_concurrent_charges_take_exactly_what_the_balance_allows(harness: Harness) -> None:
    caller = await harness.new_caller(credits=23)
    billing = harness.services.billing

    async def one(i: int) -> bool:
        try:
            await billing.charge(caller.account_id, 2, reference=f"req-{i}", surface="tts", units=10)
        except InsufficientCredits:
            return False
        return True

    outcomes = await asyncio.gather(*(one(i) for i in range(60)))

    assert sum(outcomes) == 11  # 23 // 2
    assert await balance(harness, caller.account_id) == 1
    assert await ledger_sum(harness, caller.account_id) == 1


async def test_a_repeated_charge_is_not_taken_twice(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    billing = harness.services.billing
    first = await billing.charge(caller.account_id, 30, reference="req-same", surface="tts")
    again = await billing.charge(caller.account_id, 30, reference="req-same", surface="tts")
    assert first.balance == again.balance == 70
    assert await balance(harness, caller.account_id) == 70


async def test_concurrent_repeats_of_one_charge_take_it_once(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    billing = harness.services.billing
    results = await asyncio.gather(
        *(billing.charge(caller.account_id, 7, reference="req-racing", surface="tts") for _ in range(20))
    )
    assert {result.balance for result in results} == {93}
    assert await balance(harness, caller.account_id) == 93
    assert await ledger_sum(harness, caller.account_id) == 93


async def test_charging_an_unknown_account_is_not_found_and_writes_nothing(harness: Harness) -> None:
    billing = harness.services.billing
    with pytest.raises(NotFound):
        await billing.charge("user_nobody", 1, reference="req-nobody", surface="tts")
    with pytest.raises(NotFound):
        await billing.hold("user_nobody", 1, reference="job-nobody", surface="tts")
    async with harness.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


async def test_a_refused_hold_leaves_nothing_in_a_transaction_that_goes_on(harness: Harness) -> None:
    caller = await harness.new_caller(credits=5)
    billing = harness.services.billing
    async with harness.services.db.transaction() as session:
        with pytest.raises(InsufficientCredits):
            await billing.hold(caller.account_id, 6, reference="job-big", surface="tts", session=session)
        # The caller's transaction commits its other work; the refused hold is no part of it.
    async with harness.services.db.session() as session:
        assert await session.get(CreditHold, "job-big") is None
    assert await balance(harness, caller.account_id) == 5
    assert await ledger_sum(harness, caller.account_id) == 5
    # Its reference is not taken: once the account can afford it, the same hold goes through.
    await billing.top_up(caller.account_id, 1)
    assert (await billing.hold(caller.account_id, 6, reference="job-big", surface="tts")).balance == 0


async def test_failed_charge_changes_nothing(harness: Harness) -> None:
    caller = await harness.new_caller(credits=5)
    with pytest.raises(InsufficientCredits):
        await harness.services.billing.charge(caller.account_id, 6, reference="too-big", surface="tts")
    assert await balance(harness, caller.account_id) == 5
    assert await ledger_sum(harness, caller.account_id) == 5


async def test_hold_then_capture_keeps_only_the_final_amount(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    billing = harness.services.billing
    await billing.hold(caller.account_id, 40, reference="job-1", surface="tts", units=400)
    assert await balance(harness, caller.account_id) == 60
    state = await billing.capture("job-1", 25)
    assert state.status == HOLD_CAPTURED
    assert await balance(harness, caller.account_id) == 75
    # Neither a second capture nor a late release moves anything.
    await billing.capture("job-1", 25)
    assert (await billing.release("job-1")).status == HOLD_CAPTURED
    assert await balance(harness, caller.account_id) == 75
    assert await ledger_sum(harness, caller.account_id) == 75


async def test_release_returns_everything_once(harness: Harness) -> None:
    caller = await harness.new_caller(credits=50)
    billing = harness.services.billing
    await billing.hold(caller.account_id, 50, reference="job-2", surface="tts")
    with pytest.raises(InsufficientCredits):
        await billing.charge(caller.account_id, 1, reference="req-x", surface="tts")
    results = await asyncio.gather(*(billing.release("job-2") for _ in range(10)))
    assert {r.status for r in results} == {HOLD_RELEASED}
    assert await balance(harness, caller.account_id) == 50
    assert await ledger_sum(harness, caller.account_id) == 50


async def test_concurrent_capture_and_release_settle_once(harness: Harness) -> None:
    caller = await harness.new_caller(credits=10)
    billing = harness.services.billing
    await billing.hold(caller.account_id, 10, reference="job-3", surface="tts")
    results = await asyncio.gather(
        billing.capture("job-3"), billing.release("job-3"), billing.capture("job-3")
    )
    final = {r.status for r in results}
    assert len(final) == 1
    expected = 0 if final == {HOLD_CAPTURED} else 10
    assert await balance(harness, caller.account_id) == expected
    assert await ledger_sum(harness, caller.account_id) == expected


async def test_settling_an_unknown_hold_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound):
        await harness.services.billing.capture("no-such-job")


async def test_monthly_quota_caps_spending_below_the_balance(
    harness_factory: Callable[..., Any], database: dict[str, Any]
) -> None:
    harness: Harness = await harness_factory(
        **database, tiers={"pro": {"monthly_quota": 10}, "free": {"monthly_quota": 10}}
    )
    caller = await harness.new_caller(tier="free", credits=100)
    billing = harness.services.billing
    result = await billing.charge(caller.account_id, 7, reference="q-1", surface="tts")
    assert result.quota_remaining == 3
    with pytest.raises(QuotaExceeded):
        await billing.charge(caller.account_id, 4, reference="q-2", surface="tts")
    await billing.hold(caller.account_id, 3, reference="q-job", surface="tts")
    await billing.release("q-job")
    account = await harness.services.accounts.get_account(caller.account_id)
    assert billing.quota_remaining(account) == 3
    assert account.credits == 93


async def test_an_accounts_quota_override_replaces_its_tiers_quota(
    harness_factory: Callable[..., Any], database: dict[str, Any]
) -> None:
    harness: Harness = await harness_factory(**database, tiers={"pro": {}, "free": {"monthly_quota": 10}})
    billing = harness.services.billing
    free = await harness.new_caller(tier="free", credits=100)
    pro = await harness.new_caller(tier="pro", credits=100)
    async with harness.services.db.transaction() as session:
        await session.execute(update(Account).where(Account.id == free.account_id).values(quota_override=20))
        await session.execute(update(Account).where(Account.id == pro.account_id).values(quota_override=5))
    assert (await billing.charge(free.account_id, 15, reference="o-1", surface="tts")).quota_remaining == 5
    with pytest.raises(QuotaExceeded):
        await billing.charge(pro.account_id, 6, reference="o-2", surface="tts")
    assert (await billing.charge(pro.account_id, 5, reference="o-3", surface="tts")).quota_remaining == 0
    # What was used in an earlier month does not count against this one.
    async with harness.services.db.transaction() as session:
        await session.execute(
            update(Account).where(Account.id == pro.account_id).values(quota_period="2000-01")
        )
    assert (await billing.charge(pro.account_id, 5, reference="o-4", surface="tts")).balance == 90


async def test_top_up_with_the_same_reference_adds_once(harness: Harness) -> None:
    caller = await harness.new_caller(credits=0)
    billing = harness.services.billing
    assert await billing.top_up(caller.account_id, 10, reference="invoice-7") == 10
    assert await billing.top_up(caller.account_id, 10, reference="invoice-7") == 10
    with pytest.raises(NotFound):
        await billing.top_up("user_nobody", 10)


async def test_metered_work_is_captured_on_success_and_released_on_failure(harness: Harness) -> None:
    billing = harness.services.billing
    account = await harness.services.accounts.create_account("metered", "pro", 100)
    async with billing.metered(account.id, 30, reference="metered-ok", surface="tts", units=30) as hold:
        assert hold.credits_used == 30
        assert (await harness.services.accounts.get_account(account.id)).credits == 70  # held meanwhile
    with pytest.raises(RuntimeError, match="engine fell over"):
        async with billing.metered(account.id, 20, reference="metered-fails", surface="tts"):
            raise RuntimeError("engine fell over")
    assert (await harness.services.accounts.get_account(account.id)).credits == 70  # only the success paid
    # Each hold was settled exactly once: a later capture or release is a no-op.
    assert (await billing.release("metered-ok")).status == HOLD_CAPTURED
    assert (await billing.capture("metered-fails")).status == HOLD_RELEASED

"""Realtime credit meters and session slots: holds grow in blocks, one capture of what was served."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from openfish.config import TierSettings
from openfish.errors import InsufficientCredits, NotFound, RateLimited
from openfish.services.accounts.sessions import TTS_SURFACE, CreditMeter, SessionSlots
from openfish.store.counters import MemoryCounters
from openfish.store.models import CreditHold, LedgerEntry, utcnow
from tests.conftest import Harness
from tests.contracts.test_ledger import balance, ledger_sum


async def hold_of(harness: Harness, reference: str) -> CreditHold | None:
    async with harness.services.db.session() as session:
        return await session.get(CreditHold, reference)


async def test_meter_grows_its_hold_in_blocks_and_captures_what_was_served(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    meter = CreditMeter(harness.services.billing, caller.account_id, TTS_SURFACE, block=30, prefix="t")
    for piece in (12, 12, 12):  # 36 credits: one block of 30, then a growth
        await meter.reserve(piece)
        meter.served(piece, piece)
    assert meter.held == 60
    assert await balance(harness, caller.account_id) == 40
    await meter.settle()
    await meter.settle()  # once only
    assert await balance(harness, caller.account_id) == 64
    assert await ledger_sum(harness, caller.account_id) == 64
    hold = await hold_of(harness, meter.reference)
    assert hold is not None
    assert (hold.status, hold.amount) == ("captured", 60)
    async with harness.services.db.session() as session:
        capture = await session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "capture"))
    assert capture is not None
    assert (capture.credits_used, capture.units) == (36, 36)


async def test_meter_falls_back_to_exactly_what_is_needed_near_the_end_of_the_balance(
    harness: Harness,
) -> None:
    caller = await harness.new_caller(credits=25)
    meter = CreditMeter(harness.services.billing, caller.account_id, TTS_SURFACE, block=100, prefix="t")
    await meter.reserve(20)  # a block of 100 is more than the balance: hold just 20
    meter.served(20, 20)
    with pytest.raises(InsufficientCredits):
        await meter.reserve(10)
    await meter.reserve(5)
    meter.served(5, 5)
    await meter.settle()
    assert await balance(harness, caller.account_id) == 0
    assert await ledger_sum(harness, caller.account_id) == 0


async def test_a_meter_that_served_nothing_costs_nothing(harness: Harness) -> None:
    caller = await harness.new_caller(credits=50)
    meter = CreditMeter(harness.services.billing, caller.account_id, TTS_SURFACE, block=10, prefix="t")
    await meter.settle()
    assert await hold_of(harness, meter.reference) is None
    meter = CreditMeter(harness.services.billing, caller.account_id, TTS_SURFACE, block=10, prefix="t")
    await meter.reserve(5)
    await meter.settle()  # reserved, never served
    assert await balance(harness, caller.account_id) == 50


async def test_extending_a_hold_twice_with_one_step_takes_once(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    billing = harness.services.billing
    await billing.hold(caller.account_id, 10, reference="h1", surface=TTS_SURFACE)
    await asyncio.gather(*(billing.extend_hold("h1", 15, step=1) for _ in range(5)))
    assert await balance(harness, caller.account_id) == 75
    hold = await hold_of(harness, "h1")
    assert hold is not None
    assert hold.amount == 25
    await billing.release("h1")
    assert await balance(harness, caller.account_id) == 100
    with pytest.raises(NotFound):
        await billing.extend_hold("h1", 5, step=2)  # settled holds do not grow


async def test_stale_realtime_holds_are_released_and_fresh_ones_kept(harness: Harness) -> None:
    caller = await harness.new_caller(credits=100)
    billing = harness.services.billing
    await billing.hold(caller.account_id, 10, reference="old", surface=TTS_SURFACE)
    await billing.hold(caller.account_id, 10, reference="job", surface="tts")
    await billing.hold(caller.account_id, 10, reference="new", surface=TTS_SURFACE)
    async with harness.services.db.transaction() as session:
        old = await session.get(CreditHold, "old")
        assert old is not None
        old.created_at = utcnow() - timedelta(hours=3)
    released = await billing.release_stale([TTS_SURFACE], utcnow() - timedelta(hours=2))
    assert released == 1
    assert await balance(harness, caller.account_id) == 80
    statuses = {ref: (await hold_of(harness, ref)).status for ref in ("old", "job", "new")}  # type: ignore[union-attr]
    assert statuses == {"old": "released", "job": "held", "new": "held"}


async def test_session_slots_cap_each_account_separately() -> None:
    slots = SessionSlots(MemoryCounters())
    tier = TierSettings(max_realtime_sessions=2)
    async with slots.hold("a", tier), slots.hold("a", tier):
        with pytest.raises(RateLimited):
            async with slots.hold("a", tier):
                pass
        async with slots.hold("b", tier):
            assert await slots.open_sessions("b") == 1
        assert await slots.open_sessions("a") == 2
    assert await slots.open_sessions("a") == 0

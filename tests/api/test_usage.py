"""GET /api/open/v1/usage reports the ledger per surface and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openfish.services.accounts.billing import BillingService
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness


async def test_usage_groups_charges_and_captures_by_surface_and_day(harness: Harness, caller: Caller) -> None:
    billing = harness.services.billing
    today = datetime.now(UTC).date()
    yesterday_clock = BillingService(
        harness.services.db, harness.services.settings, clock=lambda: datetime.now(UTC) - timedelta(days=1)
    )
    await yesterday_clock.charge(caller.account_id, 5, reference="y1", surface="tts", units=50)
    await billing.charge(caller.account_id, 10, reference="t1", surface="tts", units=100)
    await billing.charge(caller.account_id, 4, reference="t2", surface="tts", units=40)
    await billing.charge(caller.account_id, 3, reference="a1", surface="asr", units=30)
    await billing.hold(caller.account_id, 9, reference="job1", surface="tts", units=90)
    await billing.capture("job1", 6)
    await billing.hold(caller.account_id, 9, reference="job2", surface="tts", units=90)
    await billing.release("job2")  # released work is not usage

    other = await harness.new_caller()
    await billing.charge(other.account_id, 99, reference="o1", surface="tts", units=990)

    response = await harness.client.get("/api/open/v1/usage", headers=caller.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["to"] == today.isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()
    items = {(item["day"], item["surface"]): item for item in body["items"]}
    assert items[(today.isoformat(), "tts")] == {
        "day": today.isoformat(),
        "surface": "tts",
        "requests": 3,
        "units": 230,
        "credits_used": 20,
    }
    assert items[(today.isoformat(), "asr")]["credits_used"] == 3
    assert items[((today - timedelta(days=1)).isoformat(), "tts")]["credits_used"] == 5
    assert body["credits_used"] == 28
    totals = {t["surface"]: t["credits_used"] for t in body["totals"]}
    assert totals == {"asr": 3, "tts": 25}

    only_today = await harness.client.get(
        "/api/open/v1/usage",
        headers=caller.headers,
        params={"from": today.isoformat(), "to": today.isoformat()},
    )
    assert only_today.json()["credits_used"] == 23


async def test_usage_rejects_bad_periods(harness: Harness, caller: Caller) -> None:
    for params in (
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "yesterday"},
        {"from": "0"},
        {"to": "1700000000"},
        {"from": "2026-1-1"},
    ):
        response = await harness.client.get("/api/open/v1/usage", headers=caller.headers, params=params)
        body = assert_v1_error(response, 400, "invalid_request")
        assert ("from" if "from" in params else "to") in body["message"]

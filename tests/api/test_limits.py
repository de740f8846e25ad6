"""Per-tier request rate and concurrency limits answer 429 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from openfish.api.deps import CurrentAccount
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Harness


async def test_requests_per_minute_is_enforced_per_account(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(tiers={"pro": {"requests_per_minute": 3}})
    caller = await harness.new_caller()
    other = await harness.new_caller()
    for _ in range(3):
        assert (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).status_code == 200
    response = await harness.client.get("/api/open/v1/profile", headers=caller.headers)
    assert_v1_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await harness.client.get("/api/open/v1/profile", headers=other.headers)).status_code == 200


async def test_concurrent_requests_are_capped_and_legacy_gets_its_envelope(
    harness_factory: Callable[..., Any],
) -> None:
    harness: Harness = await harness_factory(tiers={"pro": {"max_concurrent_requests": 2}})
    caller = await harness.new_caller()
    release = asyncio.Event()
    both_inside = asyncio.Event()
    entered = 0

    async def slow(_principal: CurrentAccount) -> dict[str, bool]:
        nonlocal entered
        entered += 1
        if entered == 2:
            both_inside.set()
        await release.wait()
        return {"ok": True}

    harness.app.add_api_route("/api/open/v1/slow", slow)
    harness.app.add_api_route("/api/open/slow", slow)
    running = [
        asyncio.create_task(harness.client.get("/api/open/v1/slow", headers=caller.headers)) for _ in range(2)
    ]
    await asyncio.wait_for(both_inside.wait(), 10)
    refused = await harness.client.get("/api/open/v1/profile", headers=caller.headers)
    assert_v1_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "1"
    legacy = await harness.client.get("/api/open/slow", headers=caller.headers)
    assert legacy.status_code == 429
    assert legacy.json()["code"] == "rate_limited"
    assert "Retry-After" in legacy.headers
    release.set()
    assert all(r.status_code == 200 for r in await asyncio.gather(*running))
    assert await harness.services.limiter.in_flight(caller.account_id) == 0
    assert (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).status_code == 200

"""Several API nodes on one PostgreSQL database enforce an account's limits together; the counters
are chosen by the database unless configured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openfish.config import Settings
from openfish.errors import RateLimited
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Harness
from tests.postgres import fresh_database

TIERS = {"free": {"requests_per_minute": 5, "max_realtime_sessions": 1}, "pro": {}}


async def two_nodes(harness_factory: Callable[..., Any], postgres: str) -> tuple[Harness, Harness]:
    """Two apps (two API nodes) on one fresh PostgreSQL database, with the tiers above."""
    url = fresh_database(postgres)
    first: Harness = await harness_factory(database={"url": url}, tiers=TIERS)
    second: Harness = await harness_factory(database={"url": url}, tiers=TIERS)
    return first, second


async def test_two_nodes_share_one_accounts_requests_per_minute(
    harness_factory: Callable[..., Any], postgres: str
) -> None:
    first, second = await two_nodes(harness_factory, postgres)
    caller = await first.new_caller(tier="free")
    for node in (first, first, first, second, second):
        assert (await node.client.get("/api/open/v1/profile", headers=caller.headers)).status_code == 200
    refused = await second.client.get("/api/open/v1/profile", headers=caller.headers)
    assert_v1_error(refused, 429, "rate_limited")  # the sixth in a minute, whichever node it reaches
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert_v1_error(
        await first.client.get("/api/open/v1/profile", headers=caller.headers), 429, "rate_limited"
    )
    other = await second.new_caller(tier="free")  # another account's window is its own
    assert (await first.client.get("/api/open/v1/profile", headers=other.headers)).status_code == 200


async def test_two_nodes_share_one_accounts_realtime_session_cap(
    harness_factory: Callable[..., Any], postgres: str
) -> None:
    first, second = await two_nodes(harness_factory, postgres)
    caller = await first.new_caller(tier="free")
    tier = first.services.settings.tiers["free"]
    async with first.services.realtime_slots.hold(caller.account_id, tier):
        with pytest.raises(RateLimited):
            async with second.services.realtime_slots.hold(caller.account_id, tier):
                pass  # pragma: no cover - refused
        assert await second.services.realtime_slots.open_sessions(caller.account_id) == 1
    async with second.services.realtime_slots.hold(caller.account_id, tier):
        assert await first.services.realtime_slots.open_sessions(caller.account_id) == 1


@pytest.mark.parametrize(
    ("database", "counters", "shared"),
    [
        (None, None, False),
        ("postgresql://db.internal/openfish", None, True),
        ("postgresql://db.internal/openfish", "memory", False),
        (None, "database", True),
    ],
)
def test_counters_are_shared_on_postgresql_unless_configured(
    tmp_path: Path, database: str | None, counters: str | None, shared: bool
) -> None:
    settings = Settings(data_dir=tmp_path, database={"url": database}, limits={"counters": counters})
    assert settings.shared_counters is shared

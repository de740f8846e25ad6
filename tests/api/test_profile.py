"""GET/POST /api/open/v1/profile."""

from __future__ import annotations

import pytest

from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness


async def test_profile_reports_tier_credits_and_quota(harness: Harness, caller: Caller) -> None:
    await harness.services.billing.charge(caller.account_id, 120, reference="r1", surface="tts")
    response = await harness.client.get("/api/open/v1/profile", headers=caller.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == caller.account_id
    assert body["tier"] == "pro"
    assert body["credits"] == 880
    assert body["api_quota_remaining"] == 880  # pro has no monthly cap: the balance limits it


async def test_free_tier_quota_is_the_monthly_cap_left(harness: Harness) -> None:
    caller = await harness.new_caller(tier="free", credits=50_000)
    await harness.services.billing.charge(caller.account_id, 2_500, reference="r2", surface="tts")
    body = (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).json()
    assert body["credits"] == 47_500
    assert body["api_quota_remaining"] == 10_000 - 2_500


async def test_webhook_url_is_stored_and_cleared(harness: Harness, caller: Caller) -> None:
    url = "https://hooks.example.com/openfish?x=1"
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )
    assert response.status_code == 200
    assert response.json()["webhookUrl"] == url
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url == url
    cleared = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": None}
    )
    assert cleared.json()["webhookUrl"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://metadata.google.internal/x",
        "https://user:pass@hooks.example.com/x",
        "https://intranet/x",
        "not a url",
        "https://",
        "https://example.com:99999/x",
        "https://example.com/\u0000",
        "https://exa mple.com/x",
    ],
)
async def test_bad_webhook_urls_are_refused_and_change_nothing(
    harness: Harness, caller: Caller, url: str
) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert "webhookUrl" in body["message"]
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url is None


async def test_profile_belongs_to_the_token_holder(harness: Harness, caller: Caller) -> None:
    other = await harness.new_caller(tier="free", credits=7)
    mine = (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).json()
    theirs = (await harness.client.get("/api/open/v1/profile", headers=other.headers)).json()
    assert mine["user_id"] != theirs["user_id"]
    assert theirs == {**theirs, "user_id": other.account_id, "credits": 7, "tier": "free"}


async def test_setting_a_webhook_reveals_its_stable_signing_secret(harness: Harness, caller: Caller) -> None:
    assert (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).json()[
        "webhookSecret"
    ] is None
    url = {"webhookUrl": "https://hooks.example.com/a"}
    first = (await harness.client.post("/api/open/v1/profile", headers=caller.headers, json=url)).json()
    assert first["webhookSecret"].startswith("whsec_")
    again = (await harness.client.post("/api/open/v1/profile", headers=caller.headers, json=url)).json()
    shown = (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).json()
    assert first["webhookSecret"] == again["webhookSecret"] == shown["webhookSecret"]
    other = await harness.new_caller()
    theirs = (await harness.client.post("/api/open/v1/profile", headers=other.headers, json=url)).json()
    assert theirs["webhookSecret"] != first["webhookSecret"]

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


LOOPBACK_SHORTHAND = [
    "https://127.1/hook",
    "https://127.0.1/hook",
    "https://0177.0.0.1/hook",
    "https://0x7f.0.0.1/hook",
    "https://0X7F.0.0.1/hook",
    "https://0177.1/hook",
    "https://2130706433/hook",
    "https://0x7f000001/hook",
    "https://017700000001/hook",
    "https://127.1./hook",
    "https://0x7f.1:8443/hook",
    "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data",  # 169.254.169.254
    "https://012.1/hook",  # 10.0.0.1
    "https://0/hook",  # 0.0.0.0
]


@pytest.mark.parametrize("url", LOOPBACK_SHORTHAND)
async def test_ipv4_shorthand_for_non_public_hosts_is_refused_and_keeps_the_old_url(
    harness: Harness, caller: Caller, url: str
) -> None:
    old = "https://hooks.example.com/old"
    kept = await harness.client.post("/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": old})
    assert kept.status_code == 200

    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )

    body = assert_v1_error(response, 400, "invalid_request")
    assert body["message"] == "webhookUrl must point at a public host"
    shown = (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).json()
    assert shown["webhookUrl"] == old
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url == old


@pytest.mark.parametrize(
    "url",
    [
        "https://999.1/hook",  # a part over 255
        "https://1.16777216/hook",  # the last part over its 3 bytes
        "https://4294967296/hook",  # over 32 bits
        "https://1.2.3.4.5/hook",  # five parts
        "https://08.1/hook",  # 8 is no octal digit
        "https://0x.1/hook",  # hex without digits
        "https://1..1/hook",  # an empty part
        "https://hooks.example.1/hook",  # a name cannot end in a number
    ],
)
async def test_numeric_hosts_that_are_no_ipv4_address_are_refused(
    harness: Harness, caller: Caller, url: str
) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert body["message"].startswith("webhookUrl has an invalid host")
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url is None


async def test_a_public_address_that_the_delivery_client_cannot_parse_is_refused(
    harness: Harness, caller: Caller
) -> None:
    # 010.8.8.8 is 8.8.8.8 to the resolver, but httpx refuses leading zeros in a dotted quad, so
    # the URL could never be delivered to.
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": "https://010.8.8.8/hook"}
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert body["message"].startswith("webhookUrl is not a valid URL")
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url is None


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x",
        "HTTPS://Hooks.Example.COM:8443/x?y=1#z",
        "https://127.0.0.1.example.com/x",  # a name, whatever its first labels look like
        "https://1.2.3.4.nip.io/x",
        "https://hooks.example.com.",
    ],
)
async def test_public_names_are_accepted(harness: Harness, caller: Caller, url: str) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )
    assert response.status_code == 200, response.text
    assert response.json()["webhookUrl"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/x",
        "https://0x8.0x8.0x8.0x8/x",  # 8.8.8.8 in hex
        "https://134744072/x",  # 8.8.8.8 as one number
        "https://[2606:4700:4700::1111]/x",
        " https://hooks.example.com/x",
        "https://hooks.example.com:0/x",
        "https://hooks.example.com:70000/x",
    ],
)
async def test_ip_literals_and_malformed_urls_are_refused(harness: Harness, caller: Caller, url: str) -> None:
    # A webhook target is a DNS name: the published pattern says so, and the server enforces it.
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": url}
    )
    assert_v1_error(response, 400, "invalid_request")
    assert (await harness.services.accounts.get_account(caller.account_id)).webhook_url is None

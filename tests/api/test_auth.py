"""Bearer authentication on every v1 and legacy path."""

from __future__ import annotations

import pytest

from openfish.api.deps import CurrentAccount
from openfish.services.accounts.accounts import LAST_USED_RESOLUTION
from openfish.services.accounts.tokens import hash_secret, parse_token
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer not-a-token",
        "Bearer ofk_tok_00000000000000000000000000000000_" + "A" * 43,
    ],
)
async def test_missing_malformed_or_unknown_token_is_401(harness: Harness, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await harness.client.get("/api/open/v1/profile", headers=headers)
    assert_v1_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_wrong_secret_for_a_real_token_id_is_401(harness: Harness, caller: Caller) -> None:
    forged = caller.token[:-4] + ("AAAA" if not caller.token.endswith("AAAA") else "BBBB")
    response = await harness.client.get("/api/open/v1/profile", headers={"Authorization": f"Bearer {forged}"})
    assert_v1_error(response, 401, "unauthorized")


async def test_revoked_token_is_401(harness: Harness, caller: Caller) -> None:
    assert (await harness.client.get("/api/open/v1/profile", headers=caller.headers)).status_code == 200
    await harness.services.accounts.revoke_token(caller.token_id)
    response = await harness.client.get("/api/open/v1/profile", headers=caller.headers)
    assert_v1_error(response, 401, "unauthorized")


async def _guarded(_principal: CurrentAccount) -> dict[str, bool]:
    return {"ok": True}


async def test_legacy_paths_answer_401_in_the_legacy_envelope(harness: Harness) -> None:
    harness.app.add_api_route("/api/open/probe", _guarded, methods=["POST"])
    response = await harness.client.post("/api/open/probe")
    assert response.status_code == 401
    assert set(response.json()) == {"error", "details", "code"}
    assert response.json()["code"] == "unauthorized"


async def test_tokens_are_stored_hashed_and_last_use_is_recorded(harness: Harness, caller: Caller) -> None:
    [token] = await harness.services.accounts.list_tokens(caller.account_id)
    assert token.last_used_at is None
    parsed = parse_token(caller.token)
    assert parsed is not None
    assert token.secret_hash == hash_secret(parsed.secret) != parsed.secret
    await harness.client.get("/api/open/v1/profile", headers=caller.headers)
    [token] = await harness.services.accounts.list_tokens(caller.account_id)
    assert token.last_used_at is not None
    assert LAST_USED_RESOLUTION.total_seconds() <= 60

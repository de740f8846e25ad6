"""Listing voices on the v1 path: ``owner=me`` narrows to the account's own voices."""

from __future__ import annotations

from tests.api.test_handlers import assert_v1_error
from tests.api.test_voices import VOICES, make_voice
from tests.conftest import Caller, Harness


async def test_owner_me_lists_only_the_voices_the_account_made(harness: Harness, caller: Caller) -> None:
    other = await harness.new_caller()
    mine = await make_voice(harness, caller)  # private
    theirs = await make_voice(harness, other, visibility="public")
    everything = (await harness.client.get(VOICES, headers=caller.headers, params={"limit": 100})).json()
    assert {mine["id"], theirs["id"], "en_US-joe-medium"} <= {item["id"] for item in everything["items"]}

    own = (await harness.client.get(VOICES, headers=caller.headers, params={"owner": "me"})).json()
    assert (own["total"], own["totalPages"], [item["id"] for item in own["items"]]) == (1, 1, [mine["id"]])
    assert own["items"][0]["isPersonal"] is True
    theirs_only = (await harness.client.get(VOICES, headers=other.headers, params={"owner": "me"})).json()
    assert [item["id"] for item in theirs_only["items"]] == [theirs["id"]]
    searched = await harness.client.get(
        VOICES, headers=caller.headers, params={"owner": "me", "search": "nobody"}
    )
    assert searched.json()["total"] == 0

    refused = await harness.client.get(VOICES, headers=caller.headers, params={"owner": "you"})
    assert "owner" in assert_v1_error(refused, 400, "invalid_request")["message"]

"""The legacy paths as a whole: the switch that turns them off alone, the deprecation every answer
on them carries (and the schema's marks), and what their 429 for a used-up quota tells clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from websockets.exceptions import InvalidStatus

from openfish.api.legacy import SUCCESSORS
from openfish.config import SurfaceSettings
from openfish.services.accounts.quotas import quota_renews_in
from tests.api.realtime_client import open_socket, parse
from tests.conftest import Caller, Harness

Serve = Callable[[Harness], Awaitable[str]]
VOICE = "en_US-joe-medium"
#: The default Deprecation: the start (UTC) of 2026-11-27, the day this release marked them.
DEPRECATED = "@1795737600"
#: One call of every legacy HTTP path: method, path, request arguments, status when served.
LEGACY_CALLS: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/api/open/tts", {"json": {"text": "Hi.", "reference_id": VOICE, "format": "wav"}}, 200),
    ("POST", "/api/open/list-models", {"json": {}}, 200),
    ("POST", "/api/open/delete-model", {"json": {"modelId": "voice_missing"}}, 404),
    ("POST", "/api/open/create-model", {"files": {"name": (None, "x")}}, 400),
    ("POST", "/api/open/lip-sync/create", {"json": {}}, 400),
    ("GET", "/api/open/lip-sync/list", {}, 200),
    ("GET", "/api/open/lip-sync/query", {"params": {"id": "job_missing"}}, 404),
]
#: Calls of the paths that replace them, and of the Fish Audio and OpenAI APIs.
OTHER_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/open/v1/speech/tts", {"json": {"text": "Hi.", "voiceId": VOICE, "format": "wav"}}),
    ("GET", "/api/open/v1/voices", {}),
    ("GET", "/api/open/v1/media/lip-sync/jobs", {}),
    ("GET", "/model", {}),
    ("GET", "/v1/models", {}),
]
DEPRECATION_HEADERS = ("Deprecation", "Link", "Sunset")


def assert_legacy_404(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {
        "error": "The requested resource was not found.",
        "details": f"requestId={response.headers['X-Request-Id']}",
        "code": "not_found",
    }


def assert_deprecated(response: httpx.Response, path: str, deprecation: str = DEPRECATED) -> None:
    assert response.headers["Deprecation"] == deprecation, (path, response.status_code)
    assert response.headers["Link"] == f'<{SUCCESSORS[path]}>; rel="successor-version"'


async def test_every_legacy_answer_says_it_is_deprecated_and_names_its_successor(
    harness: Harness, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    for method, path, arguments, status in LEGACY_CALLS:
        response = await harness.client.request(method, path, headers=caller.headers, **arguments)
        assert response.status_code == status, (path, response.text)
        assert_deprecated(response, path)
        assert "Sunset" not in response.headers
    # Errors before the route (no token, a wrong method, a body over the limit) carry them too.
    assert_deprecated(await harness.client.post("/api/open/tts", json={"text": "x"}), "/api/open/tts")
    wrong_method = await harness.client.get("/api/open/tts", headers=caller.headers)
    assert wrong_method.status_code == 405
    assert_deprecated(wrong_method, "/api/open/tts")
    too_large = await harness.client.post(
        "/api/open/list-models",
        headers={**caller.headers, "Content-Type": "application/json"},
        content=b" " * (harness.services.settings.http.max_body_bytes + 1),
    )
    assert too_large.status_code == 413
    assert_deprecated(too_large, "/api/open/list-models")

    # So does the 500 of an unexpected failure, which leaves from outside the middleware.
    async def explode(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.services.jobs, "page", explode)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    failed = await client.get("/api/open/lip-sync/list", headers=caller.headers)
    await client.aclose()
    assert failed.status_code == 500
    assert_deprecated(failed, "/api/open/lip-sync/list")


async def test_a_sunset_is_sent_once_configured_and_nothing_outside_the_legacy_paths(
    harness_factory: Callable[..., Any],
) -> None:
    surfaces = {"legacy_deprecation": "2027-01-01", "legacy_sunset": "2027-06-30"}
    harness: Harness = await harness_factory(surfaces=surfaces)
    caller = await harness.new_caller()
    for method, path, arguments, status in LEGACY_CALLS:
        response = await harness.client.request(method, path, headers=caller.headers, **arguments)
        assert response.status_code == status, (path, response.text)
        assert_deprecated(response, path, deprecation="@1798761600")  # 2027-01-01T00:00:00Z
        assert response.headers["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    for method, path, arguments in OTHER_CALLS:
        response = await harness.client.request(method, path, headers=caller.headers, **arguments)
        assert response.status_code == 200, (path, response.text)
        assert not set(DEPRECATION_HEADERS) & set(response.headers), path
    # An unknown path under /api/open/ is no legacy operation: a 404 without them.
    unknown = await harness.client.post("/api/open/nothing-here", headers=caller.headers)
    assert_legacy_404(unknown)
    assert "Deprecation" not in unknown.headers


def test_a_sunset_before_the_deprecation_is_refused() -> None:
    with pytest.raises(ValidationError, match="legacy_sunset"):
        SurfaceSettings(legacy_deprecation=date(2027, 1, 1), legacy_sunset=date(2026, 12, 31))


async def test_switched_off_the_legacy_paths_answer_404_and_leave_the_schema_while_the_rest_work(
    harness_factory: Callable[..., Any],
) -> None:
    on: Harness = await harness_factory()
    on_paths = set((await on.client.get("/api/openapi.json")).json()["paths"])
    assert {path for _method, path, _arguments, _status in LEGACY_CALLS} <= on_paths

    off: Harness = await harness_factory(surfaces={"legacy": False})
    caller = await off.new_caller()
    document = (await off.client.get("/api/openapi.json")).json()
    assert not set(SUCCESSORS) & set(document["paths"])
    assert not set(SUCCESSORS) & set(document["x-websockets"])
    assert "/api/open/v1/speech/tts/live" in document["x-websockets"]
    assert on_paths - set(SUCCESSORS) == set(document["paths"])  # nothing else left
    for method, path, arguments, _status in LEGACY_CALLS:
        response = await off.client.request(method, path, headers=caller.headers, **arguments)
        assert_legacy_404(response)
        assert not set(DEPRECATION_HEADERS) & set(response.headers), path
    for method, path, arguments in OTHER_CALLS:
        response = await off.client.request(method, path, headers=caller.headers, **arguments)
        assert response.status_code == 200, (path, response.text)
    assert await off.balance(caller.account_id) == 1000 - len("Hi.")  # the v1 TTS only


async def test_the_legacy_socket_is_deprecated_at_its_handshake_and_gone_when_switched_off(
    harness_factory: Callable[..., Any], serve: Serve
) -> None:
    on: Harness = await harness_factory()
    caller = await on.new_caller(features=("realtime_tts",))
    base = await serve(on)
    async with open_socket(f"{base}/api/open/tts/live", caller) as ws:
        connected = parse(await ws.recv())
        handshake = ws.response.headers
    assert connected["event"] == "connected"
    assert handshake["Deprecation"] == DEPRECATED
    assert handshake["Link"] == '</api/open/v1/speech/tts/live>; rel="successor-version"'
    async with open_socket(f"{base}/api/open/v1/speech/tts/live", caller) as ws:
        assert "Deprecation" not in ws.response.headers

    off: Harness = await harness_factory(surfaces={"legacy": False})
    caller = await off.new_caller(features=("realtime_tts",))
    base = await serve(off)
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(f"{base}/api/open/tts/live", caller):
            pass
    assert refused.value.response.status_code == 403  # as on any path without a socket
    async with open_socket(f"{base}/api/open/v1/speech/tts/live", caller) as ws:
        await ws.send('{"event": "start", "format": "pcm"}')
        await ws.send('{"event": "stop"}')
        assert parse(await ws.recv())["event"] == "finish"


async def test_the_schema_marks_every_legacy_operation_and_socket_deprecated(harness: Harness) -> None:
    document = (await harness.client.get("/api/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("deprecated", False) == (path in SUCCESSORS), (method, path)
            if path not in SUCCESSORS:
                continue
            assert "legacy" in operation["tags"]
            for status, response in operation["responses"].items():
                assert {"Deprecation", "Link"} <= set(response["headers"]), (path, status)
                assert "Sunset" not in response["headers"]
    sockets = document["x-websockets"]
    assert sockets["/api/open/tts/live"]["deprecated"] is True
    assert sockets["/api/open/tts/live"]["successor"] == "/api/open/v1/speech/tts/live"
    assert "deprecated" not in sockets["/api/open/v1/speech/tts/live"]


async def test_the_legacy_429_is_declared_as_rate_limit_or_credits_with_its_envelope(
    harness: Harness,
) -> None:
    document = (await harness.client.get("/api/openapi.json")).json()
    legacy_envelope = {"$ref": "#/components/schemas/LegacyErrorBody"}
    for path in SUCCESSORS.keys() & document["paths"].keys():
        for operation in document["paths"][path].values():
            declared = operation["responses"]["429"]
            for code in ("rate_limited", "insufficient_credits", "quota_exceeded"):
                assert code in declared["description"], (path, code)
            assert declared["content"]["application/json"]["schema"] == legacy_envelope
            assert "Retry-After" in declared["headers"]
    v1 = document["paths"]["/api/open/v1/speech/tts"]["post"]["responses"]["429"]
    assert "insufficient_credits" not in v1["description"]


async def test_sync_tts_declares_voice_not_ready_and_no_audio(harness: Harness) -> None:
    paths = (await harness.client.get("/api/openapi.json")).json()["paths"]
    for path, envelope in (("/api/open/v1/speech/tts", "ErrorBody"), ("/api/open/tts", "LegacyErrorBody")):
        responses = paths[path]["post"]["responses"]
        for status in ("409", "422"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{envelope}"}, (path, status)
        assert "voice" in responses["409"]["description"]
        assert "cache=true" in responses["422"]["description"]


async def test_a_used_up_quota_tells_legacy_clients_when_it_renews(
    harness_factory: Callable[..., Any],
) -> None:
    harness: Harness = await harness_factory(tiers={"pro": {}, "metered": {"monthly_quota": 10}})
    caller = await harness.new_caller(tier="metered", credits=1000)

    async def legacy_tts(text: str) -> httpx.Response:
        body = {"text": text, "reference_id": VOICE, "format": "wav"}
        return await harness.client.post("/api/open/tts", headers=caller.headers, json=body)

    spent = await legacy_tts("Eight ch")
    assert spent.status_code == 200
    assert spent.headers["X-Credits-Used"] == "8"  # of the month's 10
    refused = await legacy_tts("Hello")  # 5 more: next month's quota covers it
    assert refused.status_code == 429
    assert refused.json()["code"] == "quota_exceeded"
    expected = quota_renews_in(datetime.now(UTC))
    assert 0 <= expected - int(refused.headers["Retry-After"]) <= 5
    assert_deprecated(refused, "/api/open/tts")
    # No month's quota covers 11 credits: waiting does not help, so no Retry-After.
    too_big = await legacy_tts("Hello world")
    assert too_big.status_code == 429
    assert too_big.json()["code"] == "quota_exceeded"
    assert "Retry-After" not in too_big.headers
    # v1 answers 402, which is not a "wait" status: no Retry-After there.
    v1 = await harness.client.post(
        "/api/open/v1/speech/tts", headers=caller.headers, json={"text": "Hello", "format": "wav"}
    )
    assert v1.status_code == 402
    assert "Retry-After" not in v1.headers
    assert await harness.balance(caller.account_id) == 1000 - 8


async def test_credits_do_not_come_back_by_waiting_so_no_retry_after(harness: Harness) -> None:
    caller = await harness.new_caller(credits=3)
    body = {"text": "Too long.", "reference_id": VOICE}
    refused = await harness.client.post("/api/open/tts", headers=caller.headers, json=body)
    assert refused.status_code == 429
    assert refused.json()["code"] == "insufficient_credits"
    assert "Retry-After" not in refused.headers


@pytest.mark.parametrize(
    ("moment", "seconds"),
    [
        (datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC), 30),
        (datetime(2026, 12, 31, 0, 0, tzinfo=UTC), 86_400),  # December rolls into January
        (datetime(2027, 2, 1, 0, 0, tzinfo=UTC), 28 * 86_400),
    ],
)
def test_quota_renews_at_the_next_calendar_month(moment: datetime, seconds: int) -> None:
    assert quota_renews_in(moment) == seconds

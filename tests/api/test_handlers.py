"""Every failure answers in the documented envelope, with a request id, and never leaks internals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from openfish.errors import InsufficientCredits
from tests.conftest import Caller, Harness


def assert_v1_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "requestId"}
    assert body["code"] == code
    assert body["requestId"] == response.headers["X-Request-Id"]
    return dict(body)


async def test_unknown_path_is_a_v1_404(harness: Harness) -> None:
    response = await harness.client.get("/api/open/v1/nothing-here")
    assert_v1_error(response, 404, "not_found")


async def test_unknown_legacy_path_answers_in_the_legacy_envelope(harness: Harness) -> None:
    response = await harness.client.post("/api/open/nothing-here")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error", "details", "code"}
    assert body["code"] == "not_found"
    assert response.headers["X-Request-Id"] in body["details"]


async def test_wrong_method_is_405_with_allow(harness: Harness, caller: Caller) -> None:
    response = await harness.client.delete("/api/open/v1/profile", headers=caller.headers)
    assert_v1_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_a_sane_client_request_id_is_echoed(harness: Harness) -> None:
    response = await harness.client.get("/healthz", headers={"X-Request-Id": "client-trace-0001"})
    assert response.headers["X-Request-Id"] == "client-trace-0001"


@pytest.mark.parametrize("unsafe", ["short", "has spaces in it", "x" * 200, "semi;colon;value"])
async def test_an_unsafe_client_request_id_is_replaced(harness: Harness, unsafe: str) -> None:
    response = await harness.client.get("/api/open/v1/profile", headers={"X-Request-Id": unsafe})
    request_id = response.headers["X-Request-Id"]
    assert request_id != unsafe
    assert request_id.startswith("req_")
    assert response.json()["requestId"] == request_id


async def test_validation_error_names_the_field(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": 42}
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert "webhookUrl" in body["message"]


async def test_unknown_field_is_refused_by_name(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": None, "tier": "enterprise"}
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert "tier" in body["message"]


async def test_malformed_json_is_400(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        "/api/open/v1/profile",
        headers={**caller.headers, "Content-Type": "application/json"},
        content=b'{"webhookUrl": ',
    )
    body = assert_v1_error(response, 400, "invalid_request")
    assert "JSON" in body["message"]


async def test_declared_oversized_body_is_refused_unread(harness: Harness, caller: Caller) -> None:
    limit = harness.services.settings.http.max_body_bytes
    response = await harness.client.post(
        "/api/open/v1/profile",
        headers={**caller.headers, "Content-Type": "application/json"},
        content=b"x" * (limit + 1),
    )
    assert_v1_error(response, 413, "payload_too_large")


async def test_streamed_oversized_body_is_cut_off(harness: Harness, caller: Caller) -> None:
    limit = harness.services.settings.http.max_body_bytes
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(64):
            chunks_sent += 1
            yield b"y" * (limit // 8)

    response = await harness.client.post(
        "/api/open/v1/profile",
        headers={**caller.headers, "Content-Type": "application/json"},
        content=body(),
    )
    assert_v1_error(response, 413, "payload_too_large")
    assert chunks_sent < 64


async def test_unexpected_exception_is_a_500_envelope_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    harness.app.add_api_route("/api/open/v1/explode", explode)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    with caplog.at_level(logging.INFO, logger="openfish"):
        response = await client.get("/api/open/v1/explode")
    await client.aclose()
    body = assert_v1_error(response, 500, "internal_error")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    errors = [record for record in caplog.records if record.name == "openfish.errors"]
    assert any(body["requestId"] in record.getMessage() for record in errors)
    # The access log shows the status the client got, not "-".
    access = [record.getMessage() for record in caplog.records if record.name == "openfish.access"]
    assert any(line.startswith("GET /api/open/v1/explode 500 ") for line in access), access


async def test_insufficient_credits_is_402_on_v1_and_429_on_legacy(harness: Harness) -> None:
    async def broke() -> None:
        raise InsufficientCredits()

    harness.app.add_api_route("/api/open/v1/broke", broke)
    harness.app.add_api_route("/api/open/broke", broke)
    v1 = await harness.client.get("/api/open/v1/broke")
    assert_v1_error(v1, 402, "insufficient_credits")
    legacy = await harness.client.get("/api/open/broke")
    assert legacy.status_code == 429
    assert legacy.json()["code"] == "insufficient_credits"

"""The app factory: enabled surfaces, the OpenAPI document, health probes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openapi_spec_validator import validate

from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness


async def test_openapi_document_is_valid_and_lists_the_enabled_surfaces(harness: Harness) -> None:
    response = await harness.client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert {"/api/open/v1/profile", "/api/open/v1/usage", "/healthz", "/readyz"} <= set(document["paths"])
    assert "bearerAuth" in document["components"]["securitySchemes"]
    profile = document["paths"]["/api/open/v1/profile"]["get"]
    assert {"400", "401", "429", "500"} <= set(profile["responses"])
    assert "Retry-After" in profile["responses"]["429"]["headers"]


async def test_a_disabled_surface_leaves_the_schema_and_answers_404(
    harness_factory: Callable[..., Any],
) -> None:
    harness: Harness = await harness_factory(surfaces={"usage": False})
    caller: Caller = await harness.new_caller()
    document = (await harness.client.get("/api/openapi.json")).json()
    assert "/api/open/v1/usage" not in document["paths"]
    assert "/api/open/v1/profile" in document["paths"]
    response = await harness.client.get("/api/open/v1/usage", headers=caller.headers)
    assert_v1_error(response, 404, "not_found")


async def test_health_and_readiness_need_no_token(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


async def test_readiness_fails_while_a_probe_fails(harness: Harness) -> None:
    async def engine_not_loaded() -> None:
        raise ConnectionError("weights still loading")

    harness.services.readiness.add("engine:test", engine_not_loaded)
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "engine:test": "failed: ConnectionError"},
    }


async def test_schema_promises_400_not_fastapis_422(harness: Harness) -> None:
    document = (await harness.client.get("/api/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]

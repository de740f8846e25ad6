"""The app factory: enabled surfaces, the OpenAPI document, health probes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from openfish.app import create_app
from openfish.config import Settings, SurfaceSettings
from openfish.engines.registry import build_engines
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness, make_settings


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
    assert ready.json()["checks"] == {"database": "ok", "engines": "ok"}


async def test_lazy_engines_load_on_first_use(tmp_path: Path) -> None:
    engines = build_engines(Settings())
    app = create_app(make_settings(tmp_path, tts={"preload": False}), engines)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        ready = await client.get("/readyz")
        assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}
        piper = engines.speech("piper")
        assert piper is not None
        assert not piper.loaded
        services = app.state.services
        account = await services.accounts.create_account("t", "pro", 100)
        token = await services.accounts.create_token(account.id)
        spoken = await client.post(
            "/api/open/v1/speech/tts",
            headers={"Authorization": f"Bearer {token.plaintext}"},
            json={"text": "Hi.", "format": "wav"},
        )
        assert spoken.status_code == 200
        assert piper.loaded
        await client.aclose()


async def test_schema_promises_400_not_fastapis_422(harness: Harness) -> None:
    document = (await harness.client.get("/api/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            unprocessable = operation["responses"].get("422", {})
            schema = unprocessable.get("content", {}).get("application/json", {}).get("schema", {})
            assert "HTTPValidationError" not in schema.get("$ref", ""), (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_schema_lists_the_realtime_sockets_the_server_runs(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory()
    sockets = (await harness.client.get("/api/openapi.json")).json()["x-websockets"]
    assert set(sockets) == {
        "/api/open/v1/speech/tts/live",
        "/api/open/tts/live",
        "/api/open/v1/speech/transcriptions/live",
        "/v1/tts/live",  # the Fish Audio API's
    }
    assert sockets["/api/open/v1/speech/tts/live"]["start"] == {"$ref": "#/components/schemas/LiveTtsStart"}
    assert sockets["/v1/tts/live"]["start"] == {"$ref": "#/components/schemas/FishLiveStart"}
    assert "flush" in sockets["/api/open/v1/speech/tts/live"]["description"]
    quiet: Harness = await harness_factory(realtime={"tts": False}, surfaces={"asr": False})
    assert "x-websockets" not in (await quiet.client.get("/api/openapi.json")).json()


async def test_lip_sync_paths_follow_their_surface_switch(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory()
    paths = (await harness.client.get("/api/openapi.json")).json()["paths"]
    assert {"/api/open/v1/media/lip-sync/jobs", "/api/open/lip-sync/create"} <= set(paths)
    off: Harness = await harness_factory(surfaces={"lipsync": False})
    caller = await off.new_caller()
    assert (
        "/api/open/v1/media/lip-sync/jobs" not in (await off.client.get("/api/openapi.json")).json()["paths"]
    )
    response = await off.client.get("/api/open/v1/media/lip-sync/jobs", headers=caller.headers)
    assert_v1_error(response, 404, "not_found")


def test_the_legacy_switch_and_dates_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENFISH_SURFACES__LEGACY", "false")
    monkeypatch.setenv("OPENFISH_SURFACES__LEGACY_DEPRECATION", "2027-01-01")
    monkeypatch.setenv("OPENFISH_SURFACES__LEGACY_SUNSET", "2027-06-30")
    surfaces = Settings().surfaces
    assert surfaces.legacy is False
    assert surfaces.legacy_deprecation == date(2027, 1, 1)
    assert surfaces.legacy_sunset == date(2027, 6, 30)
    assert SurfaceSettings().legacy_deprecation == date(2026, 11, 27)  # the default

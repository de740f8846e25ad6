"""Shared fixtures: a real app on a fresh SQLite database per test, driven through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from openfish.api.deps import Services
from openfish.app import create_app
from openfish.config import Settings
from openfish.engines.registry import EngineRegistry, build_engines


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated in ``tmp_path``; keyword arguments override fields."""
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "bootstrap": {"enabled": False}}
    values.update(overrides)
    return Settings(**values)


@dataclass
class Caller:
    """An account with a token, and headers that authenticate as it."""

    account_id: str
    token: str
    token_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Harness:
    """A running app, its services and an httpx client bound to it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def new_caller(self, tier: str = "pro", credits: int = 1000) -> Caller:
        account = await self.services.accounts.create_account("tester", tier, credits)
        issued = await self.services.accounts.create_token(account.id, "test")
        return Caller(account.id, issued.plaintext, issued.token_id)


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> EngineRegistry:
    """The real engines, loaded once for the whole test session and shared by every app."""
    registry = build_engines(Settings(data_dir=tmp_path_factory.mktemp("engines")))
    registry.load_all()
    return registry


@pytest.fixture
async def harness_factory(tmp_path: Path, engines: EngineRegistry) -> AsyncIterator[Callable[..., Any]]:
    """Builds harnesses with custom settings; each runs the app's lifespan."""
    stack: list[tuple[FastAPI, httpx.AsyncClient, Any]] = []

    async def build(engines: EngineRegistry = engines, **overrides: Any) -> Harness:
        app = create_app(make_settings(tmp_path / f"h{len(stack)}", **overrides), engines)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.append((app, client, lifespan))
        return Harness(app=app, client=client)

    yield build
    for _app, client, lifespan in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def harness(harness_factory: Callable[..., Any]) -> Harness:
    """A harness with default settings."""
    built: Harness = await harness_factory()
    return built


@pytest.fixture
async def caller(harness: Harness) -> Caller:
    """A pro-tier account with 1000 credits and a token."""
    return await harness.new_caller()

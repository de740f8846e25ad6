"""Shared fixtures: a real app on a fresh SQLite database per test, driven through httpx."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from bench.server import free_port
from fastapi import FastAPI

from openfish.api.sockets import websocket_options
from openfish.app import create_app
from openfish.config import Settings
from openfish.container import Services
from openfish.engines.registry import EngineRegistry, build_engines
from tests.postgres import fresh_database, postgres_server
from tests.s3 import s3_server, s3_storage

if TYPE_CHECKING:
    from tests.api.fish_sdk import Clients


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated in ``tmp_path``; keyword arguments override fields."""
    # The tests' HTTP client reaches the app as http://testserver: that is this server's own URL.
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "bootstrap": {"enabled": False},
        "public_url": "http://testserver",
    }
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

    async def new_caller(
        self, tier: str = "pro", credits: int = 1000, features: tuple[str, ...] = ()
    ) -> Caller:
        account = await self.services.accounts.create_account("tester", tier, credits)
        for flag in features:
            await self.services.accounts.set_feature(account.id, flag, True)
        issued = await self.services.accounts.create_token(account.id, "test")
        return Caller(account.id, issued.plaintext, issued.token_id)

    async def balance(self, account_id: str) -> int:
        return (await self.services.accounts.get_account(account_id)).credits


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> EngineRegistry:
    """The real engines, loaded once for the whole test session and shared by every app."""
    registry = build_engines(Settings(data_dir=tmp_path_factory.mktemp("engines")))
    registry.load_all()
    return registry


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's) for the whole session, started on first use: its URL."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL server for the whole session (started on first use): its base URL."""
    with postgres_server() as url:
        yield url


#: ``postgresql`` runs every harness (so every API suite) on PostgreSQL instead of SQLite;
#: ``cluster`` on PostgreSQL and an S3 bucket (moto's server) instead of the data directory.
BACKENDS_VARIABLE = "OPENFISH_TEST_BACKENDS"


@pytest.fixture
async def harness_factory(
    request: pytest.FixtureRequest, tmp_path: Path, engines: EngineRegistry
) -> AsyncIterator[Callable[..., Any]]:
    """Builds harnesses with custom settings; each runs the app's lifespan."""
    stack: list[tuple[FastAPI, httpx.AsyncClient, Any]] = []

    async def build(engines: EngineRegistry = engines, **overrides: Any) -> Harness:
        backends = os.environ.get(BACKENDS_VARIABLE, "")
        if backends in ("postgresql", "cluster") and "database" not in overrides:
            overrides["database"] = {"url": fresh_database(request.getfixturevalue("postgres"))}
        if backends == "cluster" and "storage" not in overrides:
            # Served through the app (no presigned redirect), so suites that download keep working.
            overrides["storage"] = s3_storage(
                request.getfixturevalue("s3_endpoint"), presigned_downloads=False
            )
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
async def serve() -> AsyncIterator[Callable[[Harness], Awaitable[str]]]:
    """Serves a harness's app over real TCP (uvicorn, in the test's event loop, with the server's
    WebSocket options) and returns its ``ws://`` base URL: WebSocket tests need a real socket."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(harness: Harness) -> str:
        port = free_port()
        options = websocket_options(harness.services.settings)
        config = uvicorn.Config(
            harness.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **options
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        servers.append((server, task))
        return f"ws://127.0.0.1:{port}"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


@pytest.fixture
async def sdk() -> AsyncIterator[Clients]:
    """Clients of the official Fish Audio SDKs, made as a user would; closed after the test."""
    from tests.api.fish_sdk import Clients  # the SDKs are imported only by the tests that use them

    clients = Clients()
    yield clients
    await clients.close()


@pytest.fixture
async def harness(harness_factory: Callable[..., Any]) -> Harness:
    """A harness with default settings."""
    built: Harness = await harness_factory()
    return built


@pytest.fixture
async def caller(harness: Harness) -> Caller:
    """A pro-tier account with 1000 credits and a token."""
    return await harness.new_caller()


@dataclass
class Captured:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server that records each request and answers scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Captured] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            pairs = (line.split(":", 1) for line in head[1:] if line)
            headers = {name.strip().lower(): value.strip() for name, value in pairs}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Captured(method, target, headers, body))
            self.arrived.set()
            await asyncio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else 200
            location = "Location: http://elsewhere.example/\r\n" if 300 <= status < 400 else ""
            head_out = f"HTTP/1.1 {status} X\r\n{location}Content-Length: 4\r\nConnection: close\r\n\r\n"
            writer.write(head_out.encode() + b"nope")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up; nothing to record
        finally:
            writer.close()
            await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder = Receiver()
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder

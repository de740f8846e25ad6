"""The application factory. Nothing is built at import time; ``create_app`` builds everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from openfish import __version__
from openfish.api import health, profile, usage
from openfish.api.deps import Services
from openfish.api.handlers import install_error_handlers
from openfish.api.schema import install_openapi
from openfish.config import Settings
from openfish.middleware import RequestContextMiddleware
from openfish.services.accounts import AccountService
from openfish.services.billing import BillingService
from openfish.services.limits import RequestLimiter
from openfish.services.readiness import Readiness
from openfish.services.usage import UsageService
from openfish.store.database import Database


def build_services(settings: Settings) -> Services:
    """The service graph for one server (or one CLI invocation)."""
    db = Database(
        settings.database_url,
        echo=settings.database.echo,
        sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
    )
    billing = BillingService(db, settings)
    services = Services(
        settings=settings,
        db=db,
        accounts=AccountService(db, settings, billing),
        billing=billing,
        usage=UsageService(db),
        limiter=RequestLimiter(),
        readiness=Readiness(),
    )
    services.readiness.add("database", db.ping)
    return services


def _surface_routers(settings: Settings) -> list[APIRouter]:
    """Routers of the surfaces switched on in ``settings.surfaces``."""
    available = {"profile": profile.router, "usage": usage.router}
    enabled = settings.surfaces.model_dump()
    return [router for name, router in available.items() if enabled.get(name, False)]


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app serving the surfaces enabled in ``settings``."""
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await services.db.migrate()
        try:
            yield
        finally:
            await services.db.dispose()

    app = FastAPI(
        title="openfish",
        summary="Self-hosted FishSpeech Open API",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.http.max_body_bytes,
        trust_client_id=settings.http.trust_client_request_id,
    )
    app.include_router(health.router)
    for router in _surface_routers(settings):
        app.include_router(router)
    return app

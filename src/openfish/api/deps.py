"""Typed dependencies: everything a route needs comes from ``app.state`` through these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from openfish.container import Services
from openfish.errors import Unauthorized
from openfish.services.accounts.accounts import Principal


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


async def _session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]

# Declares the scheme in the OpenAPI document; the checks themselves are ours (below).
_bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth", description="An openfish API token.")


async def _current_account(
    request: Request,
    services: ServicesDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Principal]:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("An `Authorization: Bearer <token>` header is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be `Bearer <token>`.")
    principal = await services.accounts.authenticate(token.strip())
    tier = services.settings.tiers.get(principal.tier) or next(iter(services.settings.tiers.values()))
    await services.limiter.acquire(principal.account_id, tier)
    try:
        # The slot stays taken until the response (streamed or not) has been sent.
        yield principal
    finally:
        # Shielded: a request cancelled by a client that left must still give its slot back.
        with anyio.CancelScope(shield=True):
            await services.limiter.release(principal.account_id)


CurrentAccount = Annotated[Principal, Depends(_current_account)]

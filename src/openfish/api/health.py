"""Liveness and readiness, without auth."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from openfish.api.deps import ReadinessDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Result of a health probe."""

    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "Not ready."}})
async def readyz(readiness: ReadinessDep) -> JSONResponse:
    """The database answers and every enabled engine is loaded."""
    checks = await readiness.run()
    ready = all(result == "ok" for result in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

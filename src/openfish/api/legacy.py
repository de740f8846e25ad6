"""The legacy paths' deprecation, made visible: the v1 path that succeeds each legacy path, the
headers every answer on a legacy path carries (``Deprecation``, RFC 9745; ``Link`` to the
successor; ``Sunset``, RFC 8594, when one is configured), and their marks in the schema.

``create_app`` builds the headers of the legacy paths it serves once (:func:`deprecations`) and
hands them to the middleware, which adds them to every answer on those paths, errors included, and
to the legacy socket's handshake, and to the schema (:func:`document_deprecations`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute

from openfish.config import SurfaceSettings
from openfish.paths import LEGACY, V1

#: Each legacy path → the v1 path that replaces it (docs/migration.md, path by path). Where the v1
#: path names one resource (delete-model, lip-sync/query), the link is to its collection, under
#: which the resource is addressed by id.
SUCCESSORS: dict[str, str] = {
    f"{LEGACY}/tts": f"{V1}/speech/tts",
    f"{LEGACY}/tts/live": f"{V1}/speech/tts/live",
    f"{LEGACY}/create-model": f"{V1}/voices",
    f"{LEGACY}/list-models": f"{V1}/voices",
    f"{LEGACY}/delete-model": f"{V1}/voices",
    f"{LEGACY}/lip-sync/create": f"{V1}/media/lip-sync/jobs",
    f"{LEGACY}/lip-sync/list": f"{V1}/media/lip-sync/jobs",
    f"{LEGACY}/lip-sync/query": f"{V1}/media/lip-sync/jobs",
}

#: How the schema describes each deprecation header on the answers of a legacy path.
_HEADER_DOCS: dict[str, dict[str, Any]] = {
    "Deprecation": {
        "description": "When this path was deprecated (RFC 9745): `@` and Unix seconds.",
        "required": True,
        "schema": {"type": "string", "pattern": "^@[0-9]+$"},
    },
    "Link": {
        "description": 'The path that replaces this one: `<path>; rel="successor-version"`.',
        "required": True,
        "schema": {"type": "string"},
    },
    "Sunset": {
        "description": "When this path may stop being served (RFC 8594), as an HTTP-date.",
        "required": True,
        "schema": {"type": "string"},
    },
}


def is_legacy_router(router: APIRouter) -> bool:
    """Whether ``router`` is a module's ``legacy_router`` (they all have the prefix ``LEGACY``)."""
    return router.prefix == LEGACY


def deprecation_headers(surfaces: SurfaceSettings, successor: str) -> dict[str, str]:
    """The headers of every answer on a legacy path whose successor is ``successor``."""
    deprecated = _midnight(surfaces.legacy_deprecation)
    headers = {
        "Deprecation": f"@{int(deprecated.timestamp())}",
        "Link": f'<{successor}>; rel="successor-version"',
    }
    if surfaces.legacy_sunset is not None:
        headers["Sunset"] = format_datetime(_midnight(surfaces.legacy_sunset), usegmt=True)
    return headers


def deprecations(routers: Iterable[APIRouter], surfaces: SurfaceSettings) -> dict[str, dict[str, str]]:
    """Path → deprecation headers, for every path of the legacy routers among ``routers``. A legacy
    path without an entry in :data:`SUCCESSORS` is a KeyError: each must say what replaces it."""
    return {
        route.path: deprecation_headers(surfaces, SUCCESSORS[route.path])
        for router in routers
        if is_legacy_router(router)
        for route in router.routes
        if isinstance(route, APIRoute | APIWebSocketRoute)
    }


def document_deprecations(document: dict[str, Any], headers: Mapping[str, Mapping[str, str]]) -> None:
    """Mark the operations and sockets of the paths in ``headers`` deprecated in the schema, and list
    the headers on each of their responses."""
    for path, sent in headers.items():
        docs = {name: _HEADER_DOCS[name] for name in sent}
        for operation in document.get("paths", {}).get(path, {}).values():
            operation["deprecated"] = True
            for response in operation.get("responses", {}).values():
                response["headers"] = {**response.get("headers", {}), **docs}
        socket = document.get("x-websockets", {}).get(path)
        if socket is not None:
            socket["deprecated"] = True
            socket["successor"] = SUCCESSORS[path]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)

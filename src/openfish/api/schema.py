"""The OpenAPI document served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def install_openapi(app: FastAPI) -> None:
    """Serve a schema without FastAPI's automatic 422 answers.

    Validation failures answer 400 in our envelope (declared on each route), so the 422
    ``HTTPValidationError`` that FastAPI adds to every route with parameters would be a lie.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            _drop_automatic_validation_responses(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_automatic_validation_responses(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            automatic = responses.get("422", {}).get("content", {}).get("application/json", {})
            if automatic.get("schema", {}).get("$ref") == _FASTAPI_VALIDATION_REF:
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)

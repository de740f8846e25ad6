"""The OpenAPI document served at ``/api/openapi.json``."""

from __future__ import annotations

import copy
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

#: A realtime socket as the schema lists it: its endpoint (docstrings) and its ``start`` message.
SocketDoc = tuple[Callable[..., Any], type[BaseModel]]

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"


def install_openapi(
    app: FastAPI,
    extra_models: Sequence[type[BaseModel]] = (),
    websockets: Mapping[str, SocketDoc] | None = None,
    rules: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Serve a schema without FastAPI's automatic 422 answers.

    Validation failures answer 400 in our envelope (declared on each route), so the 422
    ``HTTPValidationError`` that FastAPI adds to every route with parameters would be a lie.
    ``extra_models`` are bodies that routes parse themselves (JSON or MessagePack) and declare by
    reference; their schemas are added to the components.

    OpenAPI cannot describe WebSockets, so the realtime sockets the app serves are listed under the
    ``x-websockets`` extension: path, protocol description (the endpoint's module docstring), and
    the schema of the ``start`` message (``websockets``: path → endpoint and start model).

    ``rules`` writes what this server enforces beyond the models' types (its versions, languages,
    models, webhook URL pattern) into the finished document.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # A copy: route-level ``openapi_extra`` dicts are shared by every app built in a process.
            document = copy.deepcopy(
                get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            )
            _drop_automatic_validation_responses(document)
            _add_models(document, extra_models)
            _add_websockets(document, websockets or {})
            if rules is not None:
                rules(document)
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


def _add_models(document: dict[str, Any], models: Sequence[type[BaseModel]]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    referenced = json.dumps(document.get("paths", {}))
    for model in models:
        if f"#/components/schemas/{model.__name__}" not in referenced:
            continue  # the surface that uses it is switched off
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema


def _add_websockets(document: dict[str, Any], sockets: Mapping[str, SocketDoc]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    listed: dict[str, Any] = {}
    for path, (endpoint, start) in sockets.items():
        summary = (inspect.getdoc(endpoint) or "").split("\n")[0]
        schema = start.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[start.__name__] = schema
        listed[path] = {
            "summary": summary,
            "description": inspect.getdoc(sys.modules[endpoint.__module__]) or summary,
            "start": {"$ref": f"#/components/schemas/{start.__name__}"},
        }
    if listed:
        document["x-websockets"] = listed

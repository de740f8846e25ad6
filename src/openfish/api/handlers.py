"""Exception handlers: every failure leaves in the envelope of its path, with a request id."""

from __future__ import annotations

import http
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from openfish.api.envelopes import error_response
from openfish.errors import (
    ERRORS_BY_STATUS,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    OpenfishError,
    ServiceUnavailable,
)
from openfish.middleware import path_headers_of, request_id_of
from openfish.store.database import UNAVAILABLE

logger = logging.getLogger("openfish.errors")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Retry-After for a database that cannot be reached: restarts and fail-overs take seconds.
DATABASE_RETRY_SECONDS = 5


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(OpenfishError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


def _respond(request: Request, error: OpenfishError) -> JSONResponse:
    response = error_response(error, request.url.path, request_id_of(request.scope))
    # The middleware adds these on the way out, but the 500 of an unexpected error leaves from
    # the server-error handler, outside it.
    response.headers.update(path_headers_of(request.scope))
    return response


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenfishError)
    return _respond(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_class = ERRORS_BY_STATUS.get(exc.status_code)
    if error_class is None:
        error_class = InvalidRequest if exc.status_code < 500 else InternalError
    generic = http.HTTPStatus(exc.status_code).phrase
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != generic else None
    error: OpenfishError
    if error_class is MethodNotAllowed:
        error = MethodNotAllowed(message, allowed=_allowed_methods(request))
    else:
        error = error_class(message)
    return _respond(request, error)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _respond(request, InvalidRequest(describe_validation_errors(exc.errors())))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning(
        "database unavailable on %s %s requestId=%s: %s",
        request.method,
        request.url.path,
        request_id_of(request.scope),
        type(exc).__name__,
    )
    return _respond(request, ServiceUnavailable(retry_after=DATABASE_RETRY_SECONDS))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = request_id_of(request.scope)
    logger.error(
        "unhandled error on %s %s requestId=%s",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return _respond(request, InternalError(f"An internal error occurred (requestId {request_id})."))


def _allowed_methods(request: Request) -> str:
    # Starlette's own Allow header names only the first route on the path; probe every method.
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return ", ".join(allowed)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One message naming each offending field, e.g. ``webhookUrl: Input should be a string``."""
    parts: list[str] = []
    for error in errors[:5]:
        location = [str(item) for item in error.get("loc", ())]
        where = location[0] if location else "body"
        field = ".".join(location[1:])
        if error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
            continue
        label = f"{field}" if where == "body" and field else f"{where} {field}".strip()
        parts.append(f"{label or 'body'}: {error.get('msg', 'invalid value')}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "Invalid request: " + "; ".join(parts)

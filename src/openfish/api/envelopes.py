"""Turning errors into responses in the envelope the path's clients expect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openfish.api.openai_errors import is_openai_path, openai_error_response
from openfish.errors import ErrorBody, LegacyErrorBody, OpenfishError, legacy_body, v1_body
from openfish.paths import FISH_PATHS, LEGACY, V1


def is_legacy_path(path: str) -> bool:
    """Legacy Open API paths (``/api/open/...`` outside ``/api/open/v1``)."""
    return path.startswith(LEGACY + "/") and not (path == V1 or path.startswith(V1 + "/"))


def is_fish_path(path: str) -> bool:
    """Paths of the official Fish Audio API at the server root (``/v1/tts``, ``/model/...``)."""
    return any(path == base or path.startswith(base + "/") for base in FISH_PATHS)


class FishErrorBody(BaseModel):
    """The Fish Audio API's error envelope (what its SDKs read; the request id is a header)."""

    status: int = Field(examples=[401])
    message: str = Field(examples=["A valid API token is required."])


def error_response(error: OpenfishError, path: str, request_id: str) -> JSONResponse:
    """The error in the envelope of the path (v1, legacy, Fish Audio, OpenAI), with its status and
    headers."""
    if is_openai_path(path):
        return openai_error_response(error, request_id)
    headers = {**error.headers(), "X-Request-Id": request_id}
    if is_fish_path(path):
        body = FishErrorBody(status=error.status, message=error.message).model_dump()
        return JSONResponse(body, status_code=error.status, headers=headers)
    if is_legacy_path(path):
        status = error.legacy_status or error.status
        headers = {**error.legacy_headers(), "X-Request-Id": request_id}
        return JSONResponse(legacy_body(error, request_id), status_code=status, headers=headers)
    return JSONResponse(v1_body(error, request_id), status_code=error.status, headers=headers)


_DESCRIPTIONS = {
    400: "The request is invalid; the message names the field.",
    401: "The bearer token is missing, malformed, unknown or revoked.",
    402: "Not enough credits, or the monthly quota is used up.",
    403: "Forbidden.",
    404: "Not found, or not visible to this account.",
    405: "Method not allowed.",
    409: "Conflict with the resource's state.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    422: "Well-formed but unprocessable.",
    429: "Rate limited; retry after the given seconds.",
    500: "Internal error; quote the requestId.",
    503: "An engine or the database is unavailable; retry after the given seconds.",
}
#: The legacy paths answer 429 for two reasons, as the contract says; ``code`` tells them apart.
_LEGACY_429 = (
    "Rate limited (`rate_limited`: retry after `Retry-After` seconds), or out of credits: "
    "`insufficient_credits` (the balance is too small; waiting does not help, so no `Retry-After`) "
    "or `quota_exceeded` (the monthly quota is used up; `Retry-After` is the seconds until the next "
    "month's quota, sent only when a month's quota covers the request)."
)
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_LEGACY_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait: always with `rate_limited`; with `quota_exceeded`, until the "
        "next quota month when that month's quota covers the request; never with `insufficient_credits`.",
        "schema": {"type": "integer"},
    }
}
_WWW_AUTH = {"WWW-Authenticate": {"description": "Always `Bearer`.", "schema": {"type": "string"}}}
#: Statuses every authenticated route can answer.
COMMON_STATUSES = (400, 401, 413, 429, 500, 503)


def error_responses(
    *statuses: int,
    legacy: bool = False,
    envelope: type[BaseModel] | None = None,
    descriptions: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses (plus the common ones), in the v1 envelope,
    the legacy one, or ``envelope``; ``descriptions`` says what a status means on this route."""
    model = envelope or (LegacyErrorBody if legacy else ErrorBody)
    answer: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(COMMON_STATUSES) | set(statuses)):
        description = (descriptions or {}).get(status) or _DESCRIPTIONS[status]
        if legacy and status == 429:
            description = _LEGACY_429
        entry: dict[str, Any] = {"model": model, "description": description}
        if status in (429, 503):
            entry["headers"] = _LEGACY_RETRY_AFTER if legacy and status == 429 else _RETRY_AFTER
        if status == 401:
            entry["headers"] = _WWW_AUTH
        answer[status] = entry
    return answer

"""Errors on the OpenAI-compatible paths, in OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}``, with the statuses its clients act on.

The openai SDK raises by status (400 ``BadRequestError``, 401 ``AuthenticationError``, 404
``NotFoundError``, 429 ``RateLimitError``, ≥500 ``InternalServerError``…) and retries 408, 409, 429
and ≥500 unless the answer says ``x-should-retry: false``. It has no class for 402, so running out
of credits answers what OpenAI itself answers: 429 with type and code ``insufficient_quota`` —
and ``x-should-retry: false``, as retrying cannot help.
"""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openfish.errors import InsufficientCredits, OpenfishError, RateLimited, Unauthorized

#: Base path of the OpenAI-compatible API (clients are given ``<server>/v1`` as their base URL).
OPENAI_V1 = "/v1"
#: The paths of the OpenAI API this server answers; they and the paths under them use its envelope.
OPENAI_PATHS = (f"{OPENAI_V1}/audio", f"{OPENAI_V1}/models")
#: Our field names as the OpenAI API calls them (messages name the field first: ``voiceId: …``).
_PARAMS = {"voiceId": "voice", "text": "input", "format": "response_format", "version": "model"}
_FIELD = re.compile(r"^(?P<lead>Invalid request: )?(?P<field>[A-Za-z_][\w.\[\]]*): ")


def is_openai_path(path: str) -> bool:
    """Whether ``path`` is one of the OpenAI API's (``/v1/audio/...``, ``/v1/models...``)."""
    return any(path == base or path.startswith(base + "/") for base in OPENAI_PATHS)


class OpenAIError(BaseModel):
    """What went wrong, as OpenAI describes it."""

    message: str = Field(examples=["voice: no voice 'narrator'"])
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(default=None, examples=["voice"])
    code: str | None = Field(default=None, examples=["not_found"])


class OpenAIErrorBody(BaseModel):
    """OpenAI's error envelope."""

    error: OpenAIError


def _type_of(error: OpenfishError) -> str:
    if isinstance(error, InsufficientCredits):
        return "insufficient_quota"
    if isinstance(error, RateLimited):
        return "requests"
    if error.status == 403:
        return "permission_error"
    return "server_error" if error.status >= 500 else "invalid_request_error"


def _code_of(error: OpenfishError) -> str:
    if isinstance(error, InsufficientCredits):
        return "insufficient_quota"
    if isinstance(error, RateLimited):
        return "rate_limit_exceeded"
    if isinstance(error, Unauthorized):
        return "invalid_api_key"
    return error.code


def openai_error_response(error: OpenfishError, request_id: str) -> JSONResponse:
    """``error`` in OpenAI's envelope: ``param`` is the field the message names, in OpenAI's name."""
    message, param = error.message, None
    found = _FIELD.match(message)
    if found:
        field = found["field"].split(".")[0].removesuffix("[]")  # the top-level field
        param = _PARAMS.get(field, field)
        message = f"{found['lead'] or ''}{param}: {message[found.end() :]}"
    status = 429 if isinstance(error, InsufficientCredits) else error.status
    headers = {**error.headers(), "X-Request-Id": request_id}
    if isinstance(error, InsufficientCredits):
        headers["x-should-retry"] = "false"
    body = OpenAIErrorBody(
        error=OpenAIError(message=message, type=_type_of(error), param=param, code=_code_of(error))
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)

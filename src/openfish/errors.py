"""One exception tree for every failure a client can see, and the two envelopes it is sent in.

Each class carries its HTTP status and wire ``code``; handlers never look at message text.
v1 paths answer ``{"code", "message", "requestId"}``; legacy paths ``{"error", "details", "code"}``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field


class OpenfishError(Exception):
    """Base of every error that is shown to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "An internal error occurred."
    #: Legacy paths answer some errors with another status (insufficient credits → 429).
    legacy_status: ClassVar[int | None] = None
    #: WebSocket close code for this error on a realtime socket; None keeps the socket open (the
    #: client may correct itself and go on).
    ws_close: ClassVar[int | None] = 1011

    def __init__(self, message: str | None = None, *, details: str | None = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs (e.g. ``Retry-After``)."""
        return {}

    def legacy_headers(self) -> dict[str, str]:
        """The extra headers on legacy paths, where some errors answer another status."""
        return self.headers()


class InvalidRequest(OpenfishError):
    status = 400
    code = "invalid_request"
    default_message = "The request payload is invalid."
    ws_close = None


class Unauthorized(OpenfishError):
    status = 401
    code = "unauthorized"
    default_message = "A valid API token is required."
    ws_close = 1008

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InsufficientCredits(OpenfishError):
    status = 402
    legacy_status = 429
    code = "insufficient_credits"
    default_message = "The account does not have enough credits for this request."
    ws_close = None


class QuotaExceeded(InsufficientCredits):
    """The monthly quota, not the balance, refuses the request. ``retry_after``: the seconds until
    the next quota month, when that month's quota will cover the request; None when no month's will."""

    code = "quota_exceeded"
    default_message = "The account's monthly API quota does not cover this request."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = None if retry_after is None else max(1, retry_after)

    def legacy_headers(self) -> dict[str, str]:
        # Legacy paths answer this with 429, and a 429 says "wait Retry-After seconds": honest only
        # when waiting for the next quota month helps. Plain credits never come back by waiting.
        if self.retry_after is None:
            return self.headers()
        return {**self.headers(), "Retry-After": str(self.retry_after)}


class Forbidden(OpenfishError):
    status = 403
    code = "forbidden"
    default_message = "Access to this resource is forbidden."
    ws_close = 1008


class NotFound(OpenfishError):
    status = 404
    code = "not_found"
    default_message = "The requested resource was not found."
    ws_close = None


class MethodNotAllowed(OpenfishError):
    status = 405
    code = "method_not_allowed"
    default_message = "The method is not allowed for this path."

    def __init__(self, message: str | None = None, *, allowed: str | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed} if self.allowed else {}


class Conflict(OpenfishError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state of the resource."
    ws_close = None


class PayloadTooLarge(OpenfishError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."
    ws_close = 1009


class UnsupportedMediaType(OpenfishError):
    status = 415
    code = "unsupported_media_type"
    default_message = "The request body's content type is not supported here."
    ws_close = 1003


class Unprocessable(OpenfishError):
    status = 422
    code = "unprocessable"
    default_message = "The request is well-formed but cannot be processed."
    ws_close = None


class _RetryableError(OpenfishError):
    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(_RetryableError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests; retry later."
    ws_close = 1013


class TimedOut(OpenfishError):
    status = 408
    code = "timeout"
    default_message = "The session was idle or open for too long."
    ws_close = 1000


class InternalError(OpenfishError):
    """An unexpected failure; the message never carries internals."""


class EngineUnavailable(_RetryableError):
    status = 503
    code = "engine_unavailable"
    default_message = "The engine for this request is not available right now."
    ws_close = 1013


class ServiceUnavailable(_RetryableError):
    """A part every request needs (the database) cannot be reached right now; nothing was done."""

    status = 503
    code = "unavailable"
    default_message = "The service is briefly unavailable; retry shortly."
    ws_close = 1013


#: Status codes Starlette raises itself (routing, body parsing) mapped onto the tree.
ERRORS_BY_STATUS: dict[int, type[OpenfishError]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        InternalError,
    )
}


class ErrorBody(BaseModel):
    """The v1 error envelope."""

    code: str = Field(examples=["invalid_request"])
    message: str = Field(examples=["The request payload is invalid."])
    requestId: str = Field(examples=["req_0123456789abcdef0123456789abcdef"])


class LegacyErrorBody(BaseModel):
    """The legacy error envelope."""

    error: str = Field(examples=["The account does not have enough credits for this request."])
    details: str | None = Field(default=None, examples=["requestId=req_0123456789abcdef0123456789abcdef"])
    code: str | None = Field(default=None, examples=["insufficient_credits"])


def v1_body(error: OpenfishError, request_id: str) -> dict[str, str]:
    """The v1 envelope for ``error``."""
    return ErrorBody(code=error.code, message=error.message, requestId=request_id).model_dump()


def legacy_body(error: OpenfishError, request_id: str) -> dict[str, str | None]:
    """The legacy envelope for ``error``; the request id travels in ``details`` when nothing else does."""
    details = error.details or f"requestId={request_id}"
    return LegacyErrorBody(error=error.message, details=details, code=error.code).model_dump()

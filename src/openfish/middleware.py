"""ASGI middleware: request ids on every response, and refusing oversized bodies unread."""

from __future__ import annotations

import re
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openfish.api.envelopes import error_response
from openfish.errors import InvalidRequest, PayloadTooLarge
from openfish.services.ids import new_id

#: The id of the request being served, for log records.
REQUEST_ID: ContextVar[str] = ContextVar("openfish_request_id", default="-")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_of(scope: Scope) -> str:
    """The id the middleware gave this request (or a fresh one outside it)."""
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else new_id("req")


class RequestContextMiddleware:
    """Gives each request an id (a sane client ``X-Request-Id`` is kept), echoes it on the
    response, and answers 413 before reading a body whose declared length is over the limit."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, trust_client_id: bool = True) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.trust_client_id = trust_client_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client_id = headers.get("x-request-id", "")
        request_id = (
            client_id if self.trust_client_id and _SANE_REQUEST_ID.match(client_id) else new_id("req")
        )
        scope.setdefault("state", {})["request_id"] = request_id
        context_token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            if scope["type"] == "http":
                refusal = self._refuse_declared_body(scope, headers, request_id)
                if refusal is not None:
                    await refusal(scope, receive, send_with_id)
                    return
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(context_token)

    def _refuse_declared_body(self, scope: Scope, headers: Headers, request_id: str) -> Response | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not declared.isdigit():
            return error_response(InvalidRequest("Content-Length is not a number"), scope["path"], request_id)
        if int(declared) > self.max_body_bytes:
            error = PayloadTooLarge(f"The request body is larger than {self.max_body_bytes} bytes.")
            return error_response(error, scope["path"], request_id)
        return None

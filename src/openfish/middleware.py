"""ASGI middleware: request ids on every response, headers fixed per path, the access log (with
the account a request was authenticated as), and body size limits."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openfish.api.envelopes import error_response
from openfish.errors import InvalidRequest, PayloadTooLarge
from openfish.services.runtime.ids import new_id

access_log = logging.getLogger("openfish.access")
#: The id of the request being served, for log records.
REQUEST_ID: ContextVar[str] = ContextVar("openfish_request_id", default="-")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_of(scope: Scope) -> str:
    """The id the middleware gave this request (or a fresh one outside it)."""
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else new_id("req")


def note_account(scope: Scope, account_id: str) -> None:
    """Record the account a request was authenticated as: the access log line names it."""
    scope.setdefault("state", {})["account_id"] = account_id


def path_headers_of(scope: Scope) -> Mapping[str, str]:
    """The headers the middleware adds to every answer on this request's path, for answers sent
    around it (the server-error handler sends its 500 from outside the middleware)."""
    headers = (scope.get("state") or {}).get("path_headers")
    return headers if isinstance(headers, Mapping) else {}


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes its limit.

    An ``HTTPException`` so that FastAPI's body parsing re-raises it instead of calling it a parse
    error; the handlers turn it into the 413 envelope.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class RequestContextMiddleware:
    """Gives each request an id (a sane client ``X-Request-Id`` is kept) and echoes it on the
    response; adds ``path_headers`` (path → headers) to every answer on those exact paths (and to a
    WebSocket's handshake); logs each request (method, path, status, time, account) to
    ``openfish.access``; enforces the body size limit of the path, before reading when the length
    is declared and while reading when it is not."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        trust_client_id: bool = True,
        path_headers: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Longest prefix first, so the most specific limit wins.
        self.body_limits = sorted((body_limits or {}).items(), key=lambda item: -len(item[0]))
        self.trust_client_id = trust_client_id
        self.path_headers = dict(path_headers or {})

    def limit_for(self, path: str) -> int:
        """The body size limit for ``path``."""
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client_id = headers.get("x-request-id", "")
        trusted = self.trust_client_id and _SANE_REQUEST_ID.match(client_id)
        request_id = client_id if trusted else new_id("req")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        extra = self.path_headers.get(scope["path"], {})
        if extra:
            state["path_headers"] = extra
        context_token = REQUEST_ID.set(request_id)

        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                for name, value in extra.items():
                    headers[name] = value
            elif message["type"] == "websocket.accept" and extra:
                added = [(name.lower().encode(), value.encode()) for name, value in extra.items()]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send_with_id)
                return
            limit = self.limit_for(scope["path"])
            refusal = self._refuse_declared_body(scope, headers, request_id, limit)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            await self.app(scope, _limited(receive, limit), send_with_id)
        except Exception:
            # The outermost server-error handler answers 500 after this frame has been left.
            status = status or 500
            raise
        finally:
            # The account id, never the token: operators find which accounts call which paths.
            access_log.info(
                "%s %s %s %.1fms account=%s",
                scope.get("method", "WS"),
                scope["path"],
                status or "-",
                (time.perf_counter() - started) * 1000,
                state.get("account_id") or "-",
            )
            REQUEST_ID.reset(context_token)

    def _refuse_declared_body(
        self, scope: Scope, headers: Headers, request_id: str, limit: int
    ) -> Response | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not declared.isdigit():
            return error_response(InvalidRequest("Content-Length is not a number"), scope["path"], request_id)
        if int(declared) > limit:
            error = PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            return error_response(error, scope["path"], request_id)
        return None


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_with_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_with_limit

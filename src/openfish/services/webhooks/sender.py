"""One webhook attempt on the wire: check the URL and its addresses, sign, and POST.

Each attempt re-checks the URL, refuses any non-public resolved address and connects to the
address it checked (the hostname stays in ``Host`` and TLS), defeating DNS rebinding. Queueing,
claiming and recording the outcome are :mod:`openfish.services.webhooks.delivery`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from openfish.config import WebhookSettings
from openfish.errors import InvalidRequest
from openfish.services.runtime import net_guard
from openfish.services.webhooks import rules

SIGNATURE_HEADER = "X-Openfish-Signature"
EVENT_ID_HEADER = "X-Openfish-Event-Id"
USER_AGENT = "openfish-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: the receiver's status code and/or what went wrong."""

    status_code: int | None = None
    error: str | None = None
    #: A failure that a retry cannot fix (a refused address): the delivery fails at once.
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        """Whether the receiver accepted the event (a 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Sends signed webhook requests to checked, pinned addresses over one lazily made client."""

    def __init__(self, rules: WebhookSettings, clock: Callable[[], datetime]) -> None:
        self._rules = rules
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    async def send(self, url: str, event_id: str, payload: str, secret: str) -> Outcome:
        """POST ``payload`` (JSON) to ``url``, signed with ``secret``. A refusal, an answer or a
        transport failure is the returned outcome; anything unexpected raises. Sets no deadline of
        its own: the caller bounds the attempt."""
        try:
            # Also refuses what httpx cannot parse, e.g. URLs stored before the validator knew
            # IPv4 shorthand (https://0177.0.0.1/): no retry can ever deliver those.
            rules.validate_webhook_url(url, self._rules)
        except InvalidRequest as exc:
            return Outcome(error=f"refused: {exc}", permanent=True)
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await net_guard.resolve(host, port)
        except OSError as exc:
            return Outcome(error=f"could not resolve {host}: {exc}")
        if not self._rules.allow_private_targets:
            for address in addresses:
                if not net_guard.is_public_address(net_guard.parse_address(address)):
                    return Outcome(error=f"refused: {host} resolves to non-public {address}", permanent=True)
        timestamp = int(self._clock().timestamp())
        body = payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: rules.sign(secret, timestamp, body),
        }
        outcome = Outcome(error=f"{host} has no address")
        for address in addresses:
            try:
                return await self._post(url, address, headers, body)
            except httpx.TransportError as exc:
                outcome = Outcome(error=f"{type(exc).__name__} to {address}: {exc}"[:500])
                if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    break  # the request may have reached the receiver: do not send it again now
        return outcome

    async def aclose(self) -> None:
        """Close the HTTP client (call at shutdown)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, url: str, address: str, headers: dict[str, str], body: bytes) -> Outcome:
        target, host_header, extensions = net_guard.pinned_request(url, address)
        client = self._http()
        request = client.build_request(
            "POST", target, content=body, headers={**headers, **host_header}, extensions=extensions
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) >= self._rules.max_response_bytes:
                    break
        finally:
            await response.aclose()
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(status_code=code)
        note = " (redirects are not followed)" if 300 <= code < 400 else ""
        snippet = bytes(received[:200]).decode("utf-8", "replace")
        return Outcome(status_code=code, error=f"HTTP {code}{note}: {snippet}"[:500])

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = net_guard.guarded_client(self._rules.timeout_seconds)
        return self._client


def describe_failure(exc: BaseException, secret: str | None) -> str:
    """``last_error`` for an unexpected failure: its type and message, without the signing secret."""
    text = f"{type(exc).__name__}: {exc}"
    if secret:
        text = text.replace(secret, "[secret]")
    return text[:500]

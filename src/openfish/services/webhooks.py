"""Rules for webhook targets and the signature on deliveries.

Registration checks the URL; delivery re-checks it, checks every resolved address and connects to
the address it checked (:func:`pinned_request`). :func:`sign` and :func:`verify` are the HMAC scheme
receivers check and :func:`backoff_seconds` the retry schedule (see ``docs/api.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import httpx

from openfish.config import WebhookSettings
from openfish.errors import InvalidRequest
from openfish.services.net_guard import IPAddress, host_address
from openfish.services.net_guard import is_public_address as is_public_address
from openfish.services.net_guard import pinned_request as pinned_request

_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_random = secrets.SystemRandom()


def validate_webhook_url(url: str, rules: WebhookSettings) -> str:
    """The URL, normalised, or InvalidRequest saying what is wrong with it."""
    url = url.strip()
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise InvalidRequest("webhookUrl must not contain spaces or control characters")
    if len(url) > rules.max_url_length:
        raise InvalidRequest(f"webhookUrl is longer than {rules.max_url_length} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"webhookUrl is not a valid URL: {exc}") from exc
    allowed = ("https", "http") if rules.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise InvalidRequest(f"webhookUrl must use {' or '.join(allowed)}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidRequest("webhookUrl has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("webhookUrl must not carry credentials")
    if port == 0:
        raise InvalidRequest("webhookUrl has an invalid port")
    try:
        address = host_address(host)
    except ValueError as exc:
        raise InvalidRequest(f"webhookUrl has an invalid host: {exc}") from exc
    if not rules.allow_private_targets and _is_internal_host(host, address):
        raise InvalidRequest("webhookUrl must point at a public host")
    try:
        # Delivery parses the URL with httpx, which refuses some hosts that resolvers accept (e.g.
        # octal "010.8.8.8"): such a URL could never be delivered, so it is not stored.
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidRequest(f"webhookUrl is not a valid URL: {exc}") from exc
    return url


def _is_internal_host(host: str, address: IPAddress | None) -> bool:
    """Whether ``host`` (whose address, if it is one, is ``address``) is obviously not public.

    ``address`` comes from :func:`host_address`, which reads IPv4 shorthand (``127.1``,
    ``0x7f.0.0.1``...) as the resolver will; a name is judged by its form only, as DNS answers are
    checked at delivery.
    """
    if address is not None:
        return not is_public_address(address)
    lowered = host.lower()
    return lowered == "localhost" or lowered.endswith(_INTERNAL_SUFFIXES) or "." not in lowered


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """The ``X-Openfish-Signature`` value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes | str, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_seconds`` of ``now``."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2].encode()
    return any(hmac.compare_digest(expected, value.encode()) for value in candidates)


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Wait after the ``attempts``-th failure: ``base × 2^(attempts-1)``, capped, ±10 % jitter."""
    delay = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 30))
    return delay * _random.uniform(0.9, 1.1)

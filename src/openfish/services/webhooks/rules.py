"""Rules for webhook targets and the signature on deliveries.

Registration checks the URL; delivery re-checks it, checks every resolved address and connects to
the address it checked (:func:`pinned_request`). :func:`sign` and :func:`verify` are the HMAC scheme
receivers check and :func:`backoff_seconds` the retry schedule (see ``docs/api.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlsplit

import httpx

from openfish.config import WebhookSettings
from openfish.errors import InvalidRequest
from openfish.services.runtime.net_guard import IPAddress, host_address
from openfish.services.runtime.net_guard import is_public_address as is_public_address
from openfish.services.runtime.net_guard import pinned_request as pinned_request

_random = secrets.SystemRandom()


#: Host names that only make sense inside a network (matched case-insensitively, as a whole name
#: or as its last labels).
_INTERNAL_NAMES = ("localhost", "local", "internal", "localdomain", "home.arpa")
_INTERNAL_SUFFIXES = tuple(f".{name}" for name in _INTERNAL_NAMES)
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_REST = r"(?:[/?#][^\s\x00-\x1f\x7f]*)?"


def webhook_url_pattern(rules: WebhookSettings) -> str:
    """The regular expression (ECMA-262 and Python alike) every accepted ``webhookUrl`` matches; the
    schema publishes it and :func:`validate_webhook_url` enforces it.

    With the default rules a target is an https URL of a DNS name with an alphabetic top-level
    label (so never an IP literal, which the pattern could not tell public from private) outside
    the internal names; with ``allow_private_targets`` any host is allowed.
    """
    scheme = "[Hh][Tt][Tt][Pp][Ss]" + ("?" if rules.allow_http else "")
    if rules.allow_private_targets:
        host = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
    else:
        internal = "|".join(_any_case(name).replace(".", r"\.") for name in _INTERNAL_NAMES)
        host = rf"(?!(?:{_LABEL}\.)*(?:{internal})\.?(?:[:/?#]|$))(?:{_LABEL}\.)+[A-Za-z]{{2,63}}\.?"
    return rf"^{scheme}://{host}(?::{_PORT})?{_REST}$"


def _any_case(word: str) -> str:
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else char for char in word)


def validate_webhook_url(url: str, rules: WebhookSettings) -> str:
    """The URL, or InvalidRequest saying what is wrong with it."""
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
    if not re.fullmatch(webhook_url_pattern(rules), url):
        raise InvalidRequest(
            "webhookUrl must be an https URL of a public DNS name (no IP address, no user info), "
            "e.g. https://hooks.example.com/openfish"
        )
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

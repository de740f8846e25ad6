"""Rules for webhook targets. Delivery re-checks the resolved address; this checks the URL."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from openfish.config import WebhookSettings
from openfish.errors import InvalidRequest

_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, metadata...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


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
    if not rules.allow_private_targets and _is_internal_host(host):
        raise InvalidRequest("webhookUrl must point at a public host")
    return url


def _is_internal_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        lowered = host.lower()
        return lowered == "localhost" or lowered.endswith(_INTERNAL_SUFFIXES) or "." not in lowered
    return not is_public_address(address)

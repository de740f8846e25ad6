"""Guards for outgoing requests to URLs that clients chose (webhooks, media URLs).

The pattern: resolve the host once (:func:`resolve`), refuse it unless every answer is a public
address (:func:`is_public_address`, :func:`non_public_kind`), then connect to the address that was
checked while keeping the hostname in ``Host`` and TLS (:func:`pinned_request`), so a second DNS
answer (DNS rebinding) can never redirect the request somewhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance-metadata endpoints, named as such in refusals.
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, metadata...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def non_public_kind(address: IPAddress) -> str | None:
    """None for a public address, else what it is: ``"loopback"``, ``"private"``, ``"metadata"``..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if is_public_address(address):
        return None
    if address in _METADATA:
        return "cloud metadata"
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def parse_address(text: str) -> IPAddress:
    """An address from ``getaddrinfo``, without an IPv6 zone (``fe80::1%eth0``)."""
    return ipaddress.ip_address(text.partition("%")[0])


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for TCP, in resolver order, without repeats.

    Runs ``socket.getaddrinfo`` in a thread; raises ``OSError`` when the name does not resolve.
    """
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pinned_request(url: str, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL aimed at ``address``, its ``Host`` header and the extensions that keep TLS on the name."""
    original = httpx.URL(url)
    host = original.raw_host.decode("ascii")
    target = original.copy_with(host=address)
    extensions: dict[str, Any] = {}
    if original.scheme == "https" and not is_ip_literal(host):
        extensions["sni_hostname"] = host
    return target, {"Host": original.netloc.decode("ascii")}, extensions


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address (IPv6 with or without brackets) rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def guarded_client(timeout_seconds: float) -> httpx.AsyncClient:
    """An HTTP client for requests pinned to checked addresses.

    No keep-alive: a pooled connection is keyed by IP and must never carry a request for another
    hostname that TLS did not verify. No redirects (callers check every hop themselves) and no
    proxies or .netrc from the environment.
    """
    return httpx.AsyncClient(
        timeout=timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )

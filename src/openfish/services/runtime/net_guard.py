"""Guards for outgoing requests to URLs that clients chose (webhooks, media URLs).

The pattern: resolve the host once (:func:`resolve`), refuse it unless every answer is a public
address (:func:`is_public_address`, :func:`non_public_kind`), then connect to the address that was
checked while keeping the hostname in ``Host`` and TLS (:func:`pinned_request`), so a second DNS
answer (DNS rebinding) can never redirect the request somewhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance-metadata endpoints, named as such in refusals.
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})

# Explicit ASCII classes, never ``\d`` or ``int()`` alone: both also accept other scripts' digits
# (and ``int()`` underscores), which no resolver reads as a number.
#: A label that makes the host an IPv4 address (WHATWG "ends in a number"); "0x" alone included.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_HEX_PART = re.compile(r"0[xX]([0-9a-fA-F]+)")
_OCTAL_PART = re.compile(r"0([0-7]+)")
_DECIMAL_PART = re.compile(r"0|[1-9][0-9]*")


#: IPv6 prefixes whose last 32 bits are an IPv4 address that a gateway reaches: NAT64 (well-known and
#: local-use prefixes) and the deprecated IPv4-compatible form.
_IPV4_CARRIERS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
)


def _as_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address leads to (mapped, NAT64, 6to4, IPv4-compatible), or itself:
    such an address is only as public as the IPv4 host behind it."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    # ``::`` and ``::1`` are IPv6's own unspecified and loopback addresses, not carriers.
    if int(address) > 1 and any(address in network for network in _IPV4_CARRIERS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (no loopback, private, metadata...), also
    through the IPv6 forms that carry an IPv4 address."""
    address = _as_ipv4(address)
    return address.is_global and not address.is_multicast


def non_public_kind(address: IPAddress) -> str | None:
    """None for a public address, else what it is: ``"loopback"``, ``"private"``, ``"metadata"``..."""
    address = _as_ipv4(address)
    if is_public_address(address):
        return None
    if address in _METADATA:
        return "cloud metadata"
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def host_address(host: str) -> IPAddress | None:
    """The IP address that the URL host ``host`` stands for, or None when ``host`` is a name.

    Checking a host with ``ipaddress.ip_address`` alone misses the IPv4 shorthand that resolvers
    (``inet_aton``, so ``getaddrinfo``) and the WHATWG URL standard accept: ``127.1``, ``127.0.1``,
    ``0177.0.0.1`` (octal), ``0x7f.0.0.1`` (hex), ``2130706433``, ``0x7f000001`` are all
    ``127.0.0.1``. So, as they do, a host whose last label (one trailing dot ignored) is numeric —
    decimal digits, ``0x`` hex, or octal with a leading ``0`` — is read as an IPv4 address of one
    to four parts, the last part filling the remaining bytes. IPv6 literals, with or without
    brackets, are parsed too. Anything else is a name (None); it takes DNS to know its addresses.

    Raises ``ValueError`` when the host looks numeric but is no valid address (``999.1``, ``08.1``,
    ``1.2.3.4.5``, ``a.1``, ``[::g]``): it can never be used as a name either.
    """
    if host.startswith("[") or ":" in host:
        try:
            return ipaddress.IPv6Address(host.removeprefix("[").removesuffix("]"))
        except ValueError as exc:
            raise ValueError(f"{host!r} is not a valid IPv6 address: {exc}") from exc
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address: more than 4 parts")
    *leading, last = [_ipv4_part(label, host) for label in labels]
    if any(part > 0xFF for part in leading) or last >= 1 << (8 * (4 - len(leading))):
        raise ValueError(f"{host!r} is not a valid IPv4 address: a part is out of range")
    value = last
    for index, part in enumerate(leading):
        value |= part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(label: str, host: str) -> int:
    """One part of an inet_aton-style IPv4 address: ``0x`` hex, ``0`` octal or decimal."""
    if match := _HEX_PART.fullmatch(label):
        return int(match[1], 16)
    if match := _OCTAL_PART.fullmatch(label):
        return int(match[1], 8)
    if _DECIMAL_PART.fullmatch(label):
        return int(label)
    raise ValueError(f"{host!r} is not a valid IPv4 address: bad part {label!r}")


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

"""net_guard: which URL hosts are IP addresses (read as resolvers read them), which addresses are public."""

from __future__ import annotations

import ipaddress
import random
import socket
import sys

import pytest

from openfish.services.runtime import net_guard
from openfish.services.runtime.net_guard import host_address, is_public_address

SHORTHAND = [
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("0177.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),  # noqa: S104 (an expected address; nothing binds to it)
    ("10.1", "10.0.0.1"),
    ("169.254.43518", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("8.8.8.8", "8.8.8.8"),
    ("134744072", "8.8.8.8"),
    ("255.255.255.255", "255.255.255.255"),
    ("1.16777215", "1.255.255.255"),
    ("4294967295", "255.255.255.255"),
]


@pytest.mark.parametrize(("host", "expected"), SHORTHAND)
def test_numeric_hosts_are_ipv4_addresses_in_every_shorthand(host: str, expected: str) -> None:
    assert host_address(host) == ipaddress.IPv4Address(expected)
    # The same address the C library's inet_aton (which getaddrinfo uses) reads from it.
    assert socket.inet_aton(host.rstrip(".")) == ipaddress.IPv4Address(expected).packed


@pytest.mark.parametrize(
    "host", ["127.1", "0177.0.0.1", "0x7f.0.0.1", "0177.1", "2130706433", "0x7f000001", "012.1", "0"]
)
def test_shorthand_for_non_public_addresses_is_not_public(host: str) -> None:
    address = host_address(host)
    assert address is not None
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "host",
    [
        "999.1",
        "256.0.0.1",
        "1.256.0.1",
        "1.16777216",
        "4294967296",
        "0x100000000",
        "1.2.3.4.5",
        "08.1",
        "09",
        "0x",
        "0x.1",
        "1..1",
        ".1",
        "hooks.example.1",
        "hooks.example.0x1f",
        "1_2.3",  # int() would take the underscore; no resolver does
        "[::g]",
        "[127.0.0.1]",
    ],
)
def test_numeric_looking_hosts_that_are_no_address_are_errors(host: str) -> None:
    with pytest.raises(ValueError, match="address"):
        host_address(host)


@pytest.mark.parametrize(
    "host",
    [
        "hooks.example.com",
        "localhost",
        "intranet",
        "127.0.0.1.example.com",
        "1.2.3.4.nip.io",
        "0x7f.example",
        "example.0xg",
        "1e1",
        "1a",
        "bücher.example",
        "xn--bcher-kva.example",
        "１２７.０.０.１",  # fullwidth digits: not ASCII numbers, so no address here
        "",
    ],
)
def test_names_are_left_to_dns(host: str) -> None:
    assert host_address(host) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[2001:4860:4860::8888]", "2001:4860:4860::8888"),
    ],
)
def test_ipv6_literals_are_addresses(host: str, expected: str) -> None:
    address = host_address(host)
    assert address == ipaddress.IPv6Address(expected)
    assert is_public_address(address) == (expected == "2001:4860:4860::8888")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compares with glibc's inet_aton")
def test_agrees_with_the_resolvers_inet_aton_on_random_hosts() -> None:
    # Wherever inet_aton reads an address, host_address reads the same; where host_address reads
    # one, inet_aton does too, except after a trailing dot, which glibc refuses mostly and WHATWG
    # URL parsing drops: reading an address there only makes the check stricter.
    rng = random.Random(20240611)
    alphabet = "0123456789xXaAfg."
    for _ in range(20_000):
        host = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))
        try:
            ours = host_address(host)
        except ValueError:
            ours = None
        try:
            theirs: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            theirs = None
        if theirs is not None or not host.endswith("."):
            assert ours == theirs, host


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::7f00:1", False),  # IPv4-compatible loopback
        ("64:ff9b::7f00:1", False),  # NAT64 to loopback
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 to the metadata address
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 to 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of loopback
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("::1", False),
        ("::", False),
        ("64:ff9b::808:808", True),
        ("2002:808:808::1", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_ipv6_forms_that_carry_ipv4_are_as_public_as_the_ipv4_host(address: str, public: bool) -> None:
    assert net_guard.is_public_address(ipaddress.ip_address(address)) is public
    assert (net_guard.non_public_kind(ipaddress.ip_address(address)) is None) is public

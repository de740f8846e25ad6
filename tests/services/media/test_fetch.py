"""MediaFetcher against a real HTTP origin on loopback, and refusals that need no server."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from openfish.config import MediaFetchSettings, Settings
from openfish.errors import Forbidden, InvalidRequest
from openfish.services.media.fetch import MediaFetcher
from openfish.services.runtime import net_guard

BODY = b"RIFF" + bytes(range(256)) * 40
CHUNK = b"\0" * (64 << 10)
Make = Callable[..., MediaFetcher]


class Origin:
    """A tiny HTTP/1.1 server: one request per connection, every answer closes it."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}
        self.finished: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Origin:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        path = ""
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in head[1:] if x)}
            self.requests.append((path, headers))
            self.finished[path] = asyncio.Event()
            await self._route(path, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if path in self.finished:
                self.finished[path].set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _route(self, path: str, writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(path)
        if parts.path == "/file":
            await self._send(writer, "200 OK", {"Content-Type": "audio/wav"}, BODY)
        elif parts.path.startswith("/redirect/"):
            left = int(parts.path.rsplit("/", 1)[1])
            location = f"/redirect/{left - 1}" if left > 1 else "../file"  # relative, resolved by us
            await self._send(writer, "302 Found", {"Location": location}, b"")
        elif parts.path in ("/loop", "/to"):
            location = parse_qs(parts.query)["url"][0] if parts.path == "/to" else "/loop"
            await self._send(writer, "307 Temporary Redirect", {"Location": location}, b"")
        elif parts.path in ("/slow", "/declared"):
            if parts.path == "/declared":
                await self._send(writer, "200 OK", {"Content-Length": str(10**12)})
            await asyncio.sleep(30)
        elif parts.path in ("/drip", "/huge"):  # forever, until the client hangs up
            await self._send(writer, "200 OK", {})
            self.sent[path] = 0
            while True:
                chunk = b"x" if path == "/drip" else CHUNK
                writer.write(chunk)
                await writer.drain()
                self.sent[path] += len(chunk)
                await asyncio.sleep(0.05 if path == "/drip" else 0)
        else:
            await self._send(writer, "404 Not Found", {}, b"no")

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, status: str, headers: dict[str, str], body: bytes | None = None
    ) -> None:
        """The status line and headers, and with ``body`` a Content-Length and the body."""
        if body is not None:
            headers = {**headers, "Content-Length": str(len(body))}
        lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await writer.drain()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with Origin("127.0.0.1") as server:
        yield server


@pytest.fixture
async def make_fetcher() -> AsyncIterator[Make]:
    made: list[MediaFetcher] = []

    def make(**overrides: Any) -> MediaFetcher:
        values: dict[str, Any] = {"allow_external_urls": True, "allow_http": True, **overrides}
        made.append(fetcher := MediaFetcher(MediaFetchSettings(**values)))
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.aclose()


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """Make ``socket.getaddrinfo`` answer ``names`` with the given addresses; others resolve for real."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        if not names[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, 1, 6, "", (a, port)) for a in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


async def test_defaults_refuse_external_urls_then_plain_http(make_fetcher: Make) -> None:
    for fetcher in (MediaFetcher(Settings()), make_fetcher(allow_external_urls=False)):
        with pytest.raises(Forbidden, match="external URLs are disabled on this server"):
            await fetcher.fetch("https://example.com/a.wav")
    with pytest.raises(InvalidRequest, match=r"scheme http: scheme not allowed \(use https\)"):
        await make_fetcher(allow_http=False).fetch("http://example.com/a.wav")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/x", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest", "fd00:ec2::254 is a cloud metadata address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
        ("http://127.9.9.9:8080/", "127.9.9.9 is a loopback address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://localhost/", "localhost resolves to a loopback address"),
        ("ftp://example.com/a.wav", "scheme ftp: scheme not allowed"),
        ("file:///etc/passwd", "scheme file: scheme not allowed"),
        ("http://user:pw@example.com/", "credentials in URL"),
        ("https://user@example.com/", "credentials in URL"),
        ("http:///nohost", "no host"),
        ("http://exa mple.com/", "spaces or control characters"),
    ],
)
async def test_refusals_say_why(make_fetcher: Make, url: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=r"refused|not allowed|no host|spaces") as caught:
        await make_fetcher().fetch(url, label="audioUrl")
    assert reason in caught.value.message
    assert caught.value.message.startswith("audioUrl")


@pytest.mark.parametrize("answers", [["10.1.2.3"], ["93.184.216.34", "10.1.2.3"]])
async def test_a_name_with_any_private_answer_is_refused(
    make_fetcher: Make, monkeypatch: pytest.MonkeyPatch, answers: list[str]
) -> None:
    fake_dns(monkeypatch, {"media.example.com": answers})
    with pytest.raises(InvalidRequest) as caught:
        await make_fetcher().fetch("https://media.example.com/a.wav")
    assert "media.example.com resolves to a private address 10.1.2.3" in caught.value.message


async def test_an_unresolvable_name_is_refused(make_fetcher: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"nowhere.example": []})
    with pytest.raises(InvalidRequest, match=r"could not resolve nowhere\.example"):
        await make_fetcher().fetch("https://nowhere.example/a.wav")


async def test_a_loopback_origin_is_refused_by_default(origin: Origin, make_fetcher: Make) -> None:
    with pytest.raises(InvalidRequest, match=r"127\.0\.0\.1 is a loopback address"):
        await make_fetcher().fetch(origin.url("/file"))
    assert origin.requests == []


async def test_connects_to_the_checked_address_with_the_original_host(
    origin: Origin, make_fetcher: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {"media.test": ["127.0.0.1"]})  # resolvable only through the check
    media = await make_fetcher(allow_private_targets=True).fetch(origin.url("/file", host="media.test"))
    assert media.data == BODY
    assert media.content_type == "audio/wav"
    [(path, headers)] = origin.requests
    assert (path, headers["host"]) == ("/file", f"media.test:{origin.port}")
    assert media.final_url == origin.url("/file", host="media.test")


async def test_follows_a_redirect_chain_with_relative_locations(origin: Origin, make_fetcher: Make) -> None:
    media = await make_fetcher(allow_private_targets=True, max_redirects=3).fetch(origin.url("/redirect/3"))
    assert media.data == BODY
    assert media.final_url == origin.url("/file")
    assert [path for path, _ in origin.requests] == ["/redirect/3", "/redirect/2", "/redirect/1", "/file"]


async def test_too_many_redirects_are_refused(origin: Origin, make_fetcher: Make) -> None:
    with pytest.raises(InvalidRequest, match=r"too many redirects \(over 2\)"):
        await make_fetcher(allow_private_targets=True, max_redirects=2).fetch(origin.url("/redirect/3"))
    with pytest.raises(InvalidRequest, match="too many redirects"):
        await make_fetcher(allow_private_targets=True).fetch(origin.url("/loop"))
    assert len(origin.requests) == 3 + 4  # each gave up after max_redirects + 1 requests


@pytest.fixture
async def public_origin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Origin]:
    """An origin on 127.0.0.2, treated as public: it stands for a public server redirecting inward."""
    real = net_guard.non_public_kind

    def fake(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        return None if str(address) == "127.0.0.2" else real(address)

    monkeypatch.setattr(net_guard, "non_public_kind", fake)
    async with Origin("127.0.0.2") as server:
        yield server


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.1:9/file", "redirect to a loopback address 127.0.0.1"),
        ("http://[::1]:9/file", "redirect to a loopback address ::1"),
        ("http://metadata.test/x", "redirect to a cloud metadata address 169.254.169.254 (metadata.test)"),
    ],
)
async def test_a_redirect_inward_is_refused(
    public_origin: Origin, make_fetcher: Make, monkeypatch: pytest.MonkeyPatch, location: str, reason: str
) -> None:
    fake_dns(monkeypatch, {"metadata.test": ["169.254.169.254"]})
    with pytest.raises(InvalidRequest) as caught:
        await make_fetcher().fetch(public_origin.url(f"/to?url={location}"))
    assert reason in caught.value.message
    assert [path for path, _ in public_origin.requests] == [f"/to?url={location}"]  # the origin passed


@pytest.mark.parametrize(
    ("location", "reason"),
    [("ftp://example.com/a", "scheme not allowed"), ("http://u:p@example.com/a", "credentials in URL")],
)
async def test_a_redirect_is_checked_like_the_url(
    origin: Origin, make_fetcher: Make, location: str, reason: str
) -> None:
    with pytest.raises(InvalidRequest, match="redirects to a URL that") as caught:
        await make_fetcher(allow_private_targets=True).fetch(origin.url(f"/to?url={location}"))
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("path", "limits", "reason"),
    [
        ("/missing", {}, "the server answered HTTP 404"),
        ("/slow", {"timeout_seconds": 0.5}, r"took longer than 0\.5 s"),  # no answer at all
        ("/drip", {"timeout_seconds": 0.5}, r"took longer than 0\.5 s"),  # one deadline, not per read
        ("/declared", {"max_bytes": 1 << 20}, r"larger than 1048576 bytes \(Content-Length"),
    ],
)
async def test_failures_and_limits(
    origin: Origin, make_fetcher: Make, path: str, limits: dict[str, Any], reason: str
) -> None:
    fetcher = make_fetcher(allow_private_targets=True, **limits)
    started = asyncio.get_running_loop().time()
    with pytest.raises(InvalidRequest, match=reason):
        await fetcher.fetch(origin.url(path))
    assert asyncio.get_running_loop().time() - started < 3


async def test_an_endless_body_is_cut_off_at_the_cap(origin: Origin, make_fetcher: Make) -> None:
    fetcher = make_fetcher(allow_private_targets=True, max_bytes=1 << 20, timeout_seconds=10)
    with pytest.raises(InvalidRequest, match="larger than 1048576 bytes"):
        await fetcher.fetch(origin.url("/huge"))
    await asyncio.wait_for(origin.finished["/huge"].wait(), 5)  # the client hung up
    assert (1 << 20) <= origin.sent["/huge"] < 32 << 20  # the cap plus socket buffers at most

"""Download media from URLs that clients give (``audioUrl``, ``videoUrl``), safely.

Every hop — the URL itself and each redirect, which are followed here, never by httpx — is checked
the same way: http(s) only (plain http only where allowed), no credentials in the URL, and every
address the host resolves to must be public (no loopback, private, link-local, reserved, multicast
or cloud-metadata address). The request then goes to the very address that was checked, with the
hostname kept in ``Host`` and TLS (:func:`net_guard.pinned_request`), so DNS rebinding cannot reach
an internal service. The body is streamed and abandoned as soon as it passes ``max_bytes``; one
deadline covers the whole fetch, redirects included. Rules: :class:`MediaFetchSettings`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from openfish.config import MediaFetchSettings, Settings
from openfish.errors import Forbidden, InvalidRequest
from openfish.services.runtime import net_guard

USER_AGENT = "openfish-media-fetch/1"
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchedMedia:
    """A downloaded body, the ``Content-Type`` it was served with and the URL it came from."""

    data: bytes
    content_type: str | None
    final_url: str


class MediaFetcher:
    """Fetches external media URLs under the server's rules; one HTTP client, closed by :meth:`aclose`."""

    def __init__(self, settings: Settings | MediaFetchSettings) -> None:
        self._rules = settings.media_fetch if isinstance(settings, Settings) else settings
        self._client: httpx.AsyncClient | None = None

    async def fetch(self, url: str, *, label: str = "the media URL") -> FetchedMedia:
        """Download ``url`` (following redirects), or raise saying why it was refused.

        ``Forbidden`` when this server does not fetch external URLs; ``InvalidRequest`` when the URL
        or a redirect breaks a rule, the body is too large, the fetch is too slow or fails.
        ``label`` names the URL in messages (e.g. ``"audioUrl"``).
        """
        if not self._rules.allow_external_urls:
            raise Forbidden(f"{label} cannot be used: external URLs are disabled on this server")
        limit = self._rules.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                return await self._follow(url, label)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise InvalidRequest(f"fetching {label} took longer than {limit:g} s") from exc

    async def aclose(self) -> None:
        """Close the HTTP client (call at shutdown); a later fetch opens a new one."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _follow(self, url: str, label: str) -> FetchedMedia:
        current = self._checked_url(url, label, redirect=False)
        redirects = 0
        while True:
            addresses = await self._checked_addresses(current, label, redirect=redirects > 0)
            response = await self._open(current, addresses, label)
            try:
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_CODES or not location:
                    return await self._read(response, current, label)
            finally:
                await response.aclose()
            redirects += 1
            if redirects > self._rules.max_redirects:
                raise InvalidRequest(f"{label} has too many redirects (over {self._rules.max_redirects})")
            try:
                target = current.join(location)
            except httpx.InvalidURL as exc:
                raise InvalidRequest(f"{label} redirects to an invalid URL: {exc}") from exc
            current = self._checked_url(str(target), label, redirect=True)

    def _checked_url(self, text: str, label: str, *, redirect: bool) -> httpx.URL:
        what = f"{label} redirects to a URL that" if redirect else label
        text = text.strip()
        if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            raise InvalidRequest(f"{what} contains spaces or control characters")
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise InvalidRequest(f"{what} is not a valid URL: {exc}") from exc
        allowed = ("https", "http") if self._rules.allow_http else ("https",)
        if url.scheme not in allowed:
            scheme, use = url.scheme or "(none)", " or ".join(allowed)
            raise InvalidRequest(f"{what} uses scheme {scheme}: scheme not allowed (use {use})")
        if url.userinfo:
            raise InvalidRequest(f"{what} has credentials in URL (user:password@), which are not allowed")
        if not url.raw_host:
            raise InvalidRequest(f"{what} has no host")
        if url.port == 0:
            raise InvalidRequest(f"{what} has an invalid port")
        return url.copy_with(fragment=None)

    async def _checked_addresses(self, url: httpx.URL, label: str, *, redirect: bool) -> list[str]:
        host = url.raw_host.decode("ascii").rstrip(".")
        if net_guard.is_ip_literal(host):
            addresses = [host.strip("[]")]
        else:
            try:
                addresses = await net_guard.resolve(host, url.port or (443 if url.scheme == "https" else 80))
            except OSError as exc:
                raise InvalidRequest(f"{label}: could not resolve {host} ({exc})") from exc
            if not addresses:
                raise InvalidRequest(f"{label}: {host} has no address")
        if self._rules.allow_private_targets:
            return addresses
        for address in addresses:
            kind = net_guard.non_public_kind(net_guard.parse_address(address))
            if kind is None:
                continue
            article = "an" if kind[0] in "aeiou" else "a"
            literal = net_guard.is_ip_literal(host)
            if redirect:
                where = f"{article} {kind} address {address}" + ("" if literal else f" ({host})")
                raise InvalidRequest(f"{label} refused: redirect to {where}")
            if literal:
                raise InvalidRequest(f"{label} refused: {address} is {article} {kind} address")
            raise InvalidRequest(f"{label} refused: {host} resolves to {article} {kind} address {address}")
        return addresses

    async def _open(self, url: httpx.URL, addresses: list[str], label: str) -> httpx.Response:
        client = self._http()
        failure = f"{url.host} has no address"
        for address in addresses:
            target, host_header, extensions = net_guard.pinned_request(str(url), address)
            headers = {**host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            request = client.build_request("GET", target, headers=headers, extensions=extensions)
            try:
                return await client.send(request, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"{type(exc).__name__} to {address}: {exc}"
            except httpx.TimeoutException:
                raise
            except httpx.TransportError as exc:
                raise InvalidRequest(f"fetching {label} failed: {type(exc).__name__}: {exc}"[:500]) from exc
        raise InvalidRequest(f"fetching {label} failed: {failure}"[:500])

    async def _read(self, response: httpx.Response, url: httpx.URL, label: str) -> FetchedMedia:
        code = response.status_code
        if not 200 <= code < 300:
            note = " (a redirect without Location)" if 300 <= code < 400 else ""
            raise InvalidRequest(f"fetching {label} failed: the server answered HTTP {code}{note}")
        cap = self._rules.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise InvalidRequest(f"{label} is larger than {cap} bytes (Content-Length {declared})")
        received = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > cap:
                    raise InvalidRequest(f"{label} is larger than {cap} bytes")
        except httpx.TimeoutException:
            raise
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise InvalidRequest(f"fetching {label} failed: {type(exc).__name__}: {exc}"[:500]) from exc
        return FetchedMedia(bytes(received), response.headers.get("content-type"), str(url))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = net_guard.guarded_client(self._rules.timeout_seconds)
        return self._client

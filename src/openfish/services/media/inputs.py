"""Media named by URL in a request (``audioUrl``, ``videoUrl``): this server's own stored audio and
the caller's uploads are read directly — no request is made, and another account's upload is a
404 — and anything else goes through the guarded fetcher (off unless the operator allows it).

A URL is this server's own only under one of its configured base URLs (``Settings.own_base_urls``);
the same path on another host is that host's, and is fetched (or refused) like any external URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

from openfish.errors import InvalidRequest, NotFound, PayloadTooLarge
from openfish.paths import STORED_AUDIO, UPLOADS
from openfish.services.media.files import FileService
from openfish.services.runtime.signing import UrlSigner
from openfish.services.runtime.workers import WorkerPool
from openfish.services.tts.synthesis import stored_audio_key
from openfish.store.blobs import BlobStore

AUDIO_PATH = f"{STORED_AUDIO}/"
FILES_PATH = f"{UPLOADS}/"


class Fetched(Protocol):
    """A fetched body."""

    @property
    def data(self) -> bytes:
        """The bytes."""
        ...


class Fetcher(Protocol):
    """Fetches external media (``services/media/fetch.py``)."""

    async def fetch(self, url: str, *, label: str = ...) -> Fetched:
        """The body at ``url``, or a refusal saying why."""
        ...


class MediaInputs:
    """Reads the bytes behind a media URL for an account."""

    def __init__(
        self,
        files: FileService,
        signer: UrlSigner,
        blobs: BlobStore,
        pool: WorkerPool,
        own_bases: Sequence[str],
        fetcher: Fetcher | None = None,
    ) -> None:
        self._own = [_origin_and_path(urlsplit(base)) for base in own_bases]
        self._files = files
        self._signer = signer
        self._blobs = blobs
        self._pool = pool
        self._fetcher = fetcher

    async def read(self, account_id: str, url: str, *, label: str, max_bytes: int | None = None) -> bytes:
        """The bytes at ``url``; errors name the field (``label``)."""
        parts = urlsplit(url)
        path = self._own_path(parts)
        if path is not None and path.startswith(AUDIO_PATH):
            data = await self._stored_audio(path.removeprefix(AUDIO_PATH), parts.query, label)
        elif path is not None and path.startswith(FILES_PATH):
            data = await self._files.get(account_id, path.removeprefix(FILES_PATH))
        elif self._fetcher is None:
            raise InvalidRequest(f"{label}: fetching external URLs is disabled on this server")
        else:
            data = (await self._fetcher.fetch(url, label=label)).data
        if max_bytes is not None and len(data) > max_bytes:
            raise PayloadTooLarge(f"{label}: the media is larger than {max_bytes} bytes")
        return data

    def _own_path(self, parts: SplitResult) -> str | None:
        """The path below this server's base URL when ``parts`` is under one of them (or is a path
        alone, which can only mean this server), else None."""
        if not parts.scheme and not parts.netloc:
            return parts.path
        try:
            origin, path = _origin_and_path(parts)
        except ValueError:
            return None  # a malformed port: not ours; the fetcher refuses it with its own words
        for own_origin, prefix in self._own:
            if origin == own_origin and (path == prefix or path.startswith(prefix + "/")):
                return path.removeprefix(prefix)
        return None

    async def _stored_audio(self, name: str, query: str, label: str) -> bytes:
        values = parse_qs(query)
        self._signer.verify(name, _first(values, "expires"), _first(values, "sig"))
        try:
            return await self._pool.submit(lambda: self._blobs.get(stored_audio_key(name)))
        except (FileNotFoundError, ValueError) as exc:
            raise NotFound(f"{label}: no such audio") from exc


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _origin_and_path(parts: SplitResult) -> tuple[tuple[str, str, int | None], str]:
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return (scheme, (parts.hostname or "").rstrip("."), port), parts.path.rstrip("/")

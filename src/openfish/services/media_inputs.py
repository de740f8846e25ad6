"""Media named by URL in a request (``audioUrl``, ``videoUrl``): this server's own stored audio and
the caller's uploads are read directly — no request is made, and another account's upload is a
404 — and anything else goes through the guarded fetcher (off unless the operator allows it)."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from openfish.errors import InvalidRequest, NotFound, PayloadTooLarge
from openfish.services.files import FileService
from openfish.services.signing import UrlSigner
from openfish.services.synthesis import stored_audio_key
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobStore

AUDIO_PATH = "/api/open/v1/audio/"
FILES_PATH = "/api/open/v1/files/"


class Fetched(Protocol):
    """A fetched body."""

    @property
    def data(self) -> bytes:
        """The bytes."""
        ...


class Fetcher(Protocol):
    """Fetches external media (``services/media_fetch.py``)."""

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
        fetcher: Fetcher | None = None,
    ) -> None:
        self._files = files
        self._signer = signer
        self._blobs = blobs
        self._pool = pool
        self._fetcher = fetcher

    async def read(self, account_id: str, url: str, *, label: str, max_bytes: int | None = None) -> bytes:
        """The bytes at ``url``; errors name the field (``label``)."""
        parts = urlsplit(url)
        if parts.path.startswith(AUDIO_PATH):
            data = await self._stored_audio(parts.path.removeprefix(AUDIO_PATH), parts.query, label)
        elif parts.path.startswith(FILES_PATH):
            data = await self._files.get(account_id, parts.path.removeprefix(FILES_PATH))
        elif self._fetcher is None:
            raise InvalidRequest(f"{label}: fetching external URLs is disabled on this server")
        else:
            data = (await self._fetcher.fetch(url, label=label)).data
        if max_bytes is not None and len(data) > max_bytes:
            raise PayloadTooLarge(f"{label}: the media is larger than {max_bytes} bytes")
        return data

    async def _stored_audio(self, name: str, query: str, label: str) -> bytes:
        values = parse_qs(query)
        try:
            expires = int(values["expires"][0])
            signature = values["sig"][0]
        except (KeyError, ValueError) as exc:
            raise InvalidRequest(f"{label}: a stored-audio URL needs its expires and sig") from exc
        self._signer.verify(name, expires, signature)
        try:
            return await self._pool.submit(lambda: self._blobs.get(stored_audio_key(name)))
        except (FileNotFoundError, ValueError) as exc:
            raise NotFound(f"{label}: no such audio") from exc

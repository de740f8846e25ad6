"""Media an account uploads, kept as blobs whose names carry the owner (no cross-account reads)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openfish.errors import NotFound
from openfish.services.runtime.ids import new_id
from openfish.services.runtime.workers import WorkerPool
from openfish.store.blobs import BlobStore

FILE_AREA = "files"
FILE_ID = re.compile(r"^file_[0-9a-f]{32}$")


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file."""

    id: str
    size: int


def _key(account_id: str, file_id: str) -> str:
    return f"{FILE_AREA}/{account_id}_{file_id}.bin"


class FileService:
    """Stores and reads back an account's uploads."""

    def __init__(self, blobs: BlobStore, pool: WorkerPool) -> None:
        self._blobs = blobs
        self._pool = pool

    async def put(self, account_id: str, data: bytes) -> StoredFile:
        """Store ``data`` for the account."""
        file_id = new_id("file")
        await self._pool.submit(lambda: self._blobs.put(_key(account_id, file_id), data))
        return StoredFile(id=file_id, size=len(data))

    async def get(self, account_id: str, file_id: str) -> bytes:
        """The account's file; 404 for an unknown id or another account's file."""
        key = self._existing_key(account_id, file_id)
        try:
            return await self._pool.submit(lambda: self._blobs.get(key))
        except FileNotFoundError as exc:
            raise NotFound("No such file.") from exc

    async def delete(self, account_id: str, file_id: str) -> None:
        """Remove the account's file (404 if there is none)."""
        key = self._existing_key(account_id, file_id)
        if not await self._pool.submit(lambda: self._blobs.exists(key)):
            raise NotFound("No such file.")
        await self._pool.submit(lambda: self._blobs.delete(key))

    def _existing_key(self, account_id: str, file_id: str) -> str:
        if not FILE_ID.match(file_id):
            raise NotFound("No such file.")
        return _key(account_id, file_id)

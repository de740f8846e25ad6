"""Blobs as files under one root directory: the embedded default.

Writes are atomic: data goes to a temporary file (``.tmp-…``) in the blob's own directory, is flushed
to disk and renamed into place, so a reader never sees half a file and a crash leaves at most a
temporary file, which :meth:`LocalBlobStore.discard_incomplete` removes later.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from openfish.store.blobs import CHUNK_BYTES, BlobInfo, check_area, check_key

_TEMPORARY = ".tmp-"


class LocalBlobStore:
    """The :class:`~openfish.store.blobs.BlobStore` contract on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        """Where the blob lives (for :mod:`openfish.store.scratch` only: nobody else sees paths)."""
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: Path) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
        os.close(handle)
        try:
            # A move when both are on one file system; a copy otherwise. Either way the final
            # rename is atomic, so readers never see half a file.
            shutil.move(source, temporary)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        handle = self.path_of(key).open("rb")  # FileNotFoundError now, not while streaming
        return _chunks(handle, start, end)

    def stat(self, key: str) -> BlobInfo:
        return _info(key, self.path_of(key).stat())

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def touch(self, key: str) -> None:
        os.utime(self.path_of(key))  # FileNotFoundError if it is gone: never creates an empty blob

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def list(self, area: str) -> Iterator[BlobInfo]:
        folder = self.root / check_area(area)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith(_TEMPORARY) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                yield _info(f"{area}/{entry.name}", entry.stat())
            except FileNotFoundError:
                continue  # deleted since the directory was read

    def discard_incomplete(self, older_than: datetime) -> int:
        cutoff = older_than.timestamp()
        removed = 0
        for temporary in self.root.glob(f"*/{_TEMPORARY}*"):
            try:
                if temporary.stat().st_mtime < cutoff:
                    temporary.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue  # its write finished (renamed) or another sweep took it
        return removed

    def download_url(self, key: str, ttl_seconds: int) -> str | None:
        check_key(key)
        return None  # files on this machine are served by the app itself


def _info(key: str, status: os.stat_result) -> BlobInfo:
    return BlobInfo(key=key, size=status.st_size, modified=datetime.fromtimestamp(status.st_mtime, UTC))


def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = handle.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk

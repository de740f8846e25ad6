"""Blob storage for generated audio: a local directory by default (S3-compatible later).

Writes are atomic: data goes to a temporary file in the same directory, is flushed to disk and
renamed into place, so a reader never sees half a file and a crash leaves no partial blob.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Protocol

_AREA = re.compile(r"^[a-z0-9_-]{1,40}$")
_KEY = re.compile(r"^[a-z0-9_-]{1,40}/[A-Za-z0-9_-]{8,128}\.[a-z0-9]{1,8}$")


class BlobStore(Protocol):
    """Named immutable blobs."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing any previous blob atomically)."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Store the file at ``source`` under ``key``, taking it over (``source`` is gone after)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""
        ...

    def touch(self, key: str) -> None:
        """Mark the blob as used now (``sweep`` judges age by last use); FileNotFoundError if none."""
        ...

    def sweep(self, area: str, unused_since: datetime, suffix: str = "") -> int:
        """Delete the blobs of ``area`` (ending in ``suffix``) not written or touched since
        ``unused_since``, and leftovers of interrupted writes; returns how many blobs went."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file the server can stream the blob from, if this store keeps blobs locally."""
        ...

    def get(self, key: str) -> bytes:
        """The blob's bytes; FileNotFoundError if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob if it exists."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe ``area/name.ext`` key (no traversal, no odd characters)."""
    if not _KEY.match(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """Blobs as files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
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
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(handle)
        try:
            # A move when both are on one file system; a copy otherwise. Either way the final
            # rename is atomic, so readers never see half a file.
            shutil.move(source, temporary)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def touch(self, key: str) -> None:
        os.utime(self._path(key))  # FileNotFoundError if it is gone: never creates an empty blob

    def sweep(self, area: str, unused_since: datetime, suffix: str = "") -> int:
        if not _AREA.match(area):
            raise ValueError(f"invalid blob area {area!r}")
        folder = self.root / area
        cutoff = unused_since.timestamp()
        removed = 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime >= cutoff:
                continue
            if entry.name.startswith(".tmp-"):
                Path(entry.path).unlink(missing_ok=True)  # a write that was interrupted
            elif entry.name.endswith(suffix):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

"""The blob storage contract: named immutable blobs (stored audio, job results, uploads, voice
references), kept in a local directory by default and in an S3-compatible store when scaled out.

Keys are ``area/name.ext``. Callers never see where or how a blob is kept: they put and read bytes
(whole, or a byte range as chunks), stat, list an area, touch and delete; a client downloads a blob
through the app (:mod:`openfish.api.downloads`, with Range) or, when the back-end can make one,
through a time-limited URL of its own. Engines that need a file get a scratch copy
(:func:`openfish.store.scratch.scratch_copy`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

_AREA = re.compile(r"^[a-z0-9_-]{1,40}$")
_KEY = re.compile(r"^[a-z0-9_-]{1,40}/[A-Za-z0-9_-]{8,128}\.[a-z0-9]{1,8}$")
#: Size of the chunks a read yields.
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class BlobInfo:
    """What is known of a stored blob without reading it."""

    key: str
    size: int
    #: When the blob was last written or touched (retention counts from here).
    modified: datetime


class BlobStore(Protocol):
    """Named immutable blobs. Every method blocks: call them from the worker pool."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any previous blob atomically: readers see the old
        blob or the new one, never part of either."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Store the file at ``source`` under ``key`` (atomically, without reading it into memory),
        taking it over: ``source`` is gone afterwards."""
        ...

    def get(self, key: str) -> bytes:
        """The whole blob; FileNotFoundError if there is none."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to (not including) ``end`` (default: the end), in chunks of at most
        ``CHUNK_BYTES``. The blob is opened before this returns, so a missing blob raises
        FileNotFoundError here rather than halfway through a response."""
        ...

    def stat(self, key: str) -> BlobInfo:
        """Size and last write or touch; FileNotFoundError if there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""
        ...

    def touch(self, key: str) -> None:
        """Mark the blob as used now (retention counts from its last use); FileNotFoundError if
        there is none (never creates an empty blob)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob if it exists (deleting a missing blob is not an error)."""
        ...

    def list(self, area: str) -> Iterator[BlobInfo]:
        """Every complete blob of ``area`` (the part of keys before the slash), in no set order."""
        ...

    def discard_incomplete(self, older_than: datetime) -> int:
        """Remove what interrupted writes left behind before ``older_than`` (temporary files,
        unfinished uploads); returns how many were removed."""
        ...

    def download_url(self, key: str, ttl_seconds: int) -> str | None:
        """A URL a client can fetch the blob from directly for ``ttl_seconds``, or None when this
        back-end has no such URLs (the app then serves the bytes itself)."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe ``area/name.ext`` key (no traversal, no odd characters)."""
    if not _KEY.match(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


def check_area(area: str) -> str:
    """``area`` if it is a safe area name."""
    if not _AREA.match(area):
        raise ValueError(f"invalid blob area {area!r}")
    return area

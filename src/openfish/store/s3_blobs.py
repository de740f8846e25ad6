"""Blobs as objects of an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...): the scale-out
back-end, through obstore (the Rust ``object_store`` crate; its synchronous calls release the GIL,
so the worker pool's threads wait on the store side by side).

A blob ``area/name.ext`` is the object ``<prefix>/area/name.ext`` of the bucket named by the URL
``s3://bucket/prefix``. S3 writes are atomic (an object appears whole or not at all, multipart
uploads included), so there are no temporary objects to hide from readers; the only objects outside
the areas are the short-lived copies a :meth:`S3BlobStore.touch` makes (under ``.touch/``, which no
area name can be), and :meth:`S3BlobStore.discard_incomplete` removes those a crash left.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from openfish.store.blobs import CHUNK_BYTES, BlobInfo, check_area, check_key

if TYPE_CHECKING:
    from obstore import BytesStream, ObjectMeta
    from obstore.store import ClientConfig, S3Config

#: Where touch keeps its in-between copy: not an area name (areas never start with a dot).
_TOUCH_AREA = ".touch"
#: S3 refuses presigned URLs valid for longer than this (SigV4's limit).
_MAX_PRESIGNED = timedelta(days=7)


class BlobStoreError(OSError):
    """The object store failed or refused a request (anything but a missing blob); the message is
    the store's own."""


class S3BlobStore:
    """The :class:`~openfish.store.blobs.BlobStore` contract on an S3-compatible bucket."""

    def __init__(self, store: S3Store, *, presigned_downloads: bool = True) -> None:
        self.store = store
        self.presigned_downloads = presigned_downloads

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        allow_http: bool = False,
        presigned_downloads: bool = True,
    ) -> S3BlobStore:
        """A store on ``s3://bucket/prefix``. Whatever is left unset comes from the standard AWS
        environment variables, which obstore reads itself (``AWS_ENDPOINT_URL``,
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ALLOW_HTTP``,
        and the rest of the AWS credential chain), so only values that are set are passed on.
        HTTP client options come from the environment too (``AWS_TIMEOUT``: 30 s by default, for a
        whole request, body included), except with ``allow_http``, which replaces them."""
        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        # Client options given here replace all of those obstore reads from the environment
        # (AWS_ALLOW_HTTP, AWS_TIMEOUT, ...), so they are given only when allow_http asks for them.
        client: ClientConfig | None = {"allow_http": True} if allow_http else None
        try:
            store = S3Store.from_url(url, config=config, client_options=client)
        except (BaseError, ValueError) as exc:
            raise ValueError(f"storage.url {url!r}: {exc}") from exc
        return cls(store, presigned_downloads=presigned_downloads)

    def put(self, key: str, data: bytes) -> None:
        path = check_key(key)
        with _errors(bucket_call=True):
            obstore.put(self.store, path, data)

    def put_file(self, key: str, source: Path) -> None:
        path = check_key(key)
        # obstore streams the file, as a multipart upload above its 5 MiB part size; S3 makes the
        # object visible only once the upload completes, and obstore aborts an upload that fails.
        with _errors(bucket_call=True):
            obstore.put(self.store, path, source)
        source.unlink()

    def get(self, key: str) -> bytes:
        path = check_key(key)
        with _errors():
            return obstore.get(self.store, path).bytes().to_bytes()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        path = check_key(key)
        with _errors():
            if start == 0 and end is None:
                # One request: the GET answers 404 before this returns, like a HEAD would.
                return _chunks(obstore.get(self.store, path).stream(min_chunk_size=CHUNK_BYTES))
            # S3 refuses empty ranges and ranges that start past the end, where a file read gives
            # nothing: the size tells which is which (and a HEAD finds a missing blob).
            size = obstore.head(self.store, path)["size"]
            stop = size if end is None else min(end, size)
            if start >= stop:
                return iter(())
            result = obstore.get(self.store, path, options={"range": (start, stop)})
            return _chunks(result.stream(min_chunk_size=CHUNK_BYTES))

    def stat(self, key: str) -> BlobInfo:
        path = check_key(key)
        with _errors():
            return _info(key, obstore.head(self.store, path))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    def touch(self, key: str) -> None:
        """Make the blob's last-modified time now. S3 cannot change it in place (an object copied
        onto itself is refused unless its metadata is replaced, which obstore cannot ask for), so
        the object is copied to a temporary key and back, then the copy is deleted: three requests
        (two copies, billed like writes, and a delete), done inside the store, so no bytes pass
        through this process. Only reused cached TTS audio is touched, at most once per reuse. A
        write of the same key between the two copies would be undone; the blobs touched are
        content-addressed, so both writes hold the same bytes."""
        path = check_key(key)
        temporary = f"{_TOUCH_AREA}/{uuid.uuid4().hex}"
        with _errors():
            obstore.copy(self.store, path, temporary)  # FileNotFoundError: never creates a blob
            try:
                obstore.copy(self.store, temporary, path)
            finally:
                obstore.delete(self.store, temporary)

    def delete(self, key: str) -> None:
        path = check_key(key)
        with _errors():
            obstore.delete(self.store, path)  # S3 answers a delete of a missing key with success

    def list(self, area: str) -> Iterator[BlobInfo]:
        # obstore matches prefixes by whole path segments: "tts" never lists "tts2/...".
        with _errors(bucket_call=True):
            for batch in obstore.list(self.store, check_area(area), chunk_size=1000):
                for meta in batch:
                    yield _info(meta["path"], meta)

    def discard_incomplete(self, older_than: datetime) -> int:
        """Delete the in-between copies of touches that a crash interrupted. Unfinished multipart
        uploads are not listed here: obstore can neither list nor abort them once their process is
        gone (it aborts those that fail while it runs), and they are never visible as objects; a
        bucket lifecycle rule (``AbortIncompleteMultipartUpload``) removes them."""
        with _errors(bucket_call=True):
            stale = [
                meta["path"]
                for batch in obstore.list(self.store, _TOUCH_AREA, chunk_size=1000)
                for meta in batch
                if meta["last_modified"] < older_than
            ]
            if stale:
                obstore.delete(self.store, stale)
        return len(stale)

    def download_url(self, key: str, ttl_seconds: int) -> str | None:
        """A presigned GET URL valid for ``ttl_seconds`` (at most S3's seven days), or None when
        presigned downloads are off (a bucket clients cannot reach). The blob is looked up first
        (a HEAD), so a missing one fails here, not at the client after a redirect."""
        path = check_key(key)
        if not self.presigned_downloads:
            return None
        expires_in = min(timedelta(seconds=ttl_seconds), _MAX_PRESIGNED)
        with _errors():
            obstore.head(self.store, path)
            return obstore.sign(self.store, "GET", path, expires_in)


@contextlib.contextmanager
def _errors(*, bucket_call: bool = False) -> Iterator[None]:
    """The contract's errors: FileNotFoundError for a missing object, BlobStoreError (an OSError)
    for anything else the store raises. A ``bucket_call`` (a write, a listing) names no object that
    must exist: its 404 is a missing bucket, a configuration error rather than a missing blob."""
    try:
        yield
    except FileNotFoundError as exc:
        if bucket_call:
            raise BlobStoreError(str(exc)) from exc
        raise
    except BaseError as exc:
        raise BlobStoreError(str(exc)) from exc


def _chunks(stream: BytesStream) -> Iterator[bytes]:
    """The stream in pieces of at most ``CHUNK_BYTES`` (obstore's chunks are at least that)."""
    with _errors():
        for chunk in stream:
            for offset in range(0, len(chunk), CHUNK_BYTES):
                yield chunk[offset : offset + CHUNK_BYTES]


def _info(key: str, meta: ObjectMeta) -> BlobInfo:
    return BlobInfo(key=key, size=meta["size"], modified=meta["last_modified"])

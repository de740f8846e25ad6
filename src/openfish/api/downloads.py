"""Handing a stored blob to a client: a redirect to the store's own time-limited URL when it has
one, else the bytes streamed through the app with single-range ``Range`` support (seeking players,
resumed downloads)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from openfish.errors import ErrorBody, NotFound
from openfish.services.runtime.workers import WorkerPool
from openfish.store.blobs import BlobInfo, BlobStore

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def download_responses(
    what: str,
    media_types: Iterable[str],
    missing: str,
    extra: Mapping[int | str, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The schema's answers of a signed download route served by :func:`blob_response`: ``what``
    (e.g. "The audio") in ``media_types``, whole or ranged, or a redirect; 403 for a bad signature,
    404 with ``missing``; ``extra`` adds route-specific answers."""
    content = dict.fromkeys(media_types, _BINARY)
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": f"{what}.", "content": content},
        206: {"description": f"Part of {what[0].lower()}{what[1:]} (Range request).", "content": content},
        307: {"description": "Redirect to the storage back-end's own time-limited URL (object stores)."},
        403: {"model": ErrorBody, "description": "The signature is missing, malformed, wrong or expired."},
        404: {"model": ErrorBody, "description": missing},
        416: {"description": "The requested range is not satisfiable."},
        500: {"model": ErrorBody, "description": "Internal error."},
    }
    return {**responses, **(extra or {})}


async def blob_response(
    request: Request,
    blobs: BlobStore,
    pool: WorkerPool,
    key: str,
    *,
    media_type: str,
    ttl_seconds: int,
    headers: Mapping[str, str] | None = None,
    missing: str = "No such file.",
) -> Response:
    """The blob at ``key`` as a response; ``NotFound(missing)`` when there is none."""
    range_header = request.headers.get("range")
    try:
        # One trip to the pool: the store's URL, or the blob's size and its opened byte range.
        found = await pool.submit(lambda: _find(blobs, key, range_header, ttl_seconds))
    except FileNotFoundError as exc:
        raise NotFound(missing) from exc
    if found.redirect is not None:
        return RedirectResponse(found.redirect, status_code=307, headers=dict(headers or {}))
    sent = {**(headers or {}), "Accept-Ranges": "bytes"}
    if found.chunks is None:
        return Response(status_code=416, headers={**sent, "Content-Range": f"bytes */{found.size}"})
    start, end = found.span
    if found.partial:
        sent["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
    sent["Content-Length"] = str(end - start)
    # A sync iterator: Starlette reads it in its thread pool, off the event loop.
    status = 206 if found.partial else 200
    return StreamingResponse(found.chunks, status_code=status, media_type=media_type, headers=sent)


@dataclass(frozen=True)
class _Found:
    """What the store had for a download."""

    redirect: str | None = None
    size: int = 0
    #: The bytes to send, ``(start, end)`` with ``end`` exclusive.
    span: tuple[int, int] = (0, 0)
    #: Whether ``span`` answers a Range request (206) rather than being the whole blob (200).
    partial: bool = False
    #: The opened range; None when the requested range is unsatisfiable (416) or on a redirect.
    chunks: Iterator[bytes] | None = None


def _find(blobs: BlobStore, key: str, range_header: str | None, ttl_seconds: int) -> _Found:
    """Blocking: the store's URL for ``key``, or its size and the requested range, opened."""
    url = blobs.download_url(key, ttl_seconds)
    if url is not None:
        return _Found(redirect=url)
    info = blobs.stat(key)
    try:
        span = _requested_range(range_header, info)
    except _Unsatisfiable:
        return _Found(size=info.size)
    start, end = span or (0, info.size)
    return _Found(
        size=info.size, span=(start, end), partial=span is not None, chunks=blobs.read(key, start, end)
    )


class _Unsatisfiable(Exception):
    """The requested range lies outside the blob (answered 416)."""


def _requested_range(header: str | None, info: BlobInfo) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a satisfiable single range, or None to send the whole
    blob (no header, or one this server ignores, as RFC 9110 allows: several ranges, other units,
    malformed); raises ``_Unsatisfiable`` for a range outside the blob."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    size = info.size
    if first == "":  # a suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - length), size
    start = int(first)
    if start >= size:
        raise _Unsatisfiable
    end = size if last == "" else min(int(last) + 1, size)
    return (start, end) if end > start else None

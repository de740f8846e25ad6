"""Handing a stored blob to a client: a redirect to the store's own time-limited URL when it has
one, else the bytes streamed through the app with single-range ``Range`` support (seeking players,
resumed downloads)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from openfish.errors import NotFound
from openfish.services.workers import WorkerPool
from openfish.store.blobs import BlobInfo, BlobStore

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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
    url = await pool.submit(lambda: blobs.download_url(key, ttl_seconds))
    if url is not None:
        return RedirectResponse(url, status_code=307, headers=dict(headers or {}))
    try:
        info = await pool.submit(lambda: blobs.stat(key))
    except FileNotFoundError as exc:
        raise NotFound(missing) from exc
    sent = {**(headers or {}), "Accept-Ranges": "bytes"}
    try:
        span = _requested_range(request.headers.get("range"), info)
    except _Unsatisfiable:
        return Response(status_code=416, headers={**sent, "Content-Range": f"bytes */{info.size}"})
    if span is None:
        start, end, status = 0, info.size, 200
    else:
        start, end = span
        status = 206
        sent["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    try:
        chunks = await pool.submit(lambda: blobs.read(key, start, end))
    except FileNotFoundError as exc:
        raise NotFound(missing) from exc  # deleted between stat and read
    sent["Content-Length"] = str(end - start)
    # A sync iterator: Starlette reads it in its thread pool, off the event loop.
    return StreamingResponse(chunks, status_code=status, media_type=media_type, headers=sent)


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

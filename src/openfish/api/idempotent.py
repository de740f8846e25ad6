"""Running a creating request under an ``Idempotency-Key`` (see ``services/accounts/idempotency.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse

from openfish.services.accounts.idempotency import IdempotencyService

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="Makes the request safe to retry: the same key and request return the first answer.",
    ),
]


async def run_once(
    idempotency: IdempotencyService,
    account_id: str,
    key: str | None,
    fingerprint: str,
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> JSONResponse:
    """``work``'s answer, or with a known key the stored first answer (no new work, no charge)."""
    if key is None:
        status, body = await work()
        return JSONResponse(body, status_code=status)
    first = await idempotency.begin(account_id, key, fingerprint)
    if first is not None:
        return JSONResponse(
            first.body, status_code=first.status_code, headers={"Idempotent-Replayed": "true"}
        )
    try:
        status, body = await work()
    except BaseException:
        await idempotency.abandon(account_id, key)
        raise
    await idempotency.complete(account_id, key, status, body)
    return JSONResponse(body, status_code=status)

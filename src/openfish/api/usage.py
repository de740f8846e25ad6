"""Usage: what the account used per surface and day, from the credit ledger."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from openfish.api.deps import CurrentAccount, UsageDep
from openfish.api.envelopes import error_responses
from openfish.errors import InvalidRequest
from openfish.paths import V1
from openfish.store.models import utcnow

router = APIRouter(prefix=V1, tags=["usage"])

DEFAULT_DAYS = 30
MAX_DAYS = 366
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: object) -> object:
    # Lax pydantic would read "0" as a Unix timestamp; the wire format is a calendar day only.
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("must be a day in YYYY-MM-DD form")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class UsageItem(BaseModel):
    """Usage of one surface on one UTC day."""

    day: date
    surface: str = Field(examples=["tts"])
    requests: int = Field(description="Charged requests (sync charges and captured jobs).")
    units: int = Field(description="Billable units of the surface (characters, seconds, ...).")
    credits_used: int


class UsageTotal(BaseModel):
    """Usage of one surface over the whole period."""

    surface: str
    requests: int
    units: int
    credits_used: int


class UsageReport(BaseModel):
    """The account's usage between two UTC days, inclusive."""

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    items: list[UsageItem]
    totals: list[UsageTotal]
    credits_used: int


@router.get("/usage", response_model=UsageReport, response_model_by_alias=True, responses=error_responses())
async def get_usage(
    principal: CurrentAccount,
    usage: UsageDep,
    start: Annotated[
        IsoDay | None, Query(alias="from", description="First UTC day (default: 29 days before `to`).")
    ] = None,
    end: Annotated[IsoDay | None, Query(alias="to", description="Last UTC day (default: today).")] = None,
) -> UsageReport:
    """Credits and units used per surface and day, as recorded in the ledger."""
    last = end or utcnow().date()
    first = start or date.fromordinal(max(1, last.toordinal() - (DEFAULT_DAYS - 1)))
    if first > last:
        raise InvalidRequest("from: must not be after `to`")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"from: the period may span at most {MAX_DAYS} days")
    rows = await usage.report(principal.account_id, first, last)
    totals: dict[str, UsageTotal] = {}
    for row in rows:
        total = totals.setdefault(
            row.surface, UsageTotal(surface=row.surface, requests=0, units=0, credits_used=0)
        )
        total.requests += row.requests
        total.units += row.units
        total.credits_used += row.credits_used
    return UsageReport.model_validate(
        {
            "from": first,
            "to": last,
            "items": [
                UsageItem(
                    day=date.fromisoformat(r.day),
                    surface=r.surface,
                    requests=r.requests,
                    units=r.units,
                    credits_used=r.credits_used,
                )
                for r in rows
            ],
            "totals": sorted(totals.values(), key=lambda t: t.surface),
            "credits_used": sum(t.credits_used for t in totals.values()),
        }
    )

"""The official Fish Audio API's wallet at the server root: ``GET /wallet/self/api-credit`` (the
credit balance) and ``GET /wallet/self/package`` (this month's quota), in the shapes the
``fish-audio-sdk`` clients read (``docs/clients.md``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from openfish.api.deps import AccountsDep, BillingDep, CurrentAccount
from openfish.api.envelopes import FishErrorBody, error_responses
from openfish.api.fish_tts import FISH_TAG
from openfish.paths import FISH_WALLET
from openfish.services.accounts.fish_wallet import monthly_package

router = APIRouter(prefix=FISH_WALLET, tags=[FISH_TAG])


def fish_time(moment: datetime) -> str:
    """A timestamp as the Fish Audio API writes them: ISO 8601, UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FishCredit(BaseModel):
    """The account's credit balance."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id", description="The account id.")
    user_id: str
    credit: int = Field(description="Credit balance (the same credits as /api/open/v1/profile).")
    created_at: str
    updated_at: str
    has_free_credit: bool | None = Field(
        default=None, description="False when check_free_credit is asked: there are no free credits."
    )


class FishPackage(BaseModel):
    """This calendar month's allowance (UTC)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    user_id: str
    type: str = Field(description="The account's tier.")
    total: int = Field(description="The monthly quota; without one, spent this month plus the balance.")
    balance: int = Field(description="Credits that may still be spent this month (api_quota_remaining).")
    created_at: str = Field(description="The start of the month.")
    updated_at: str
    finished_at: str = Field(description="The end of the month, when the quota starts afresh.")


@router.get(
    "/api-credit",
    response_model=FishCredit,
    response_model_exclude_none=True,
    responses=error_responses(envelope=FishErrorBody),
)
async def api_credit(
    principal: CurrentAccount,
    accounts: AccountsDep,
    check_free_credit: Annotated[
        bool | None, Query(description="Also say whether free credit is left.")
    ] = None,
) -> FishCredit:
    """The calling account's credit balance (Fish Audio API)."""
    account = await accounts.get_account(principal.account_id)
    return FishCredit(
        id=account.id,
        user_id=account.id,
        credit=account.credits,
        created_at=fish_time(account.created_at),
        updated_at=fish_time(account.updated_at),
        has_free_credit=False if check_free_credit else None,
    )


@router.get("/package", response_model=FishPackage, responses=error_responses(envelope=FishErrorBody))
async def package(principal: CurrentAccount, accounts: AccountsDep, billing: BillingDep) -> FishPackage:
    """The calling account's allowance this month (Fish Audio API)."""
    account = await accounts.get_account(principal.account_id)
    current = monthly_package(account, billing, datetime.now(UTC))
    return FishPackage(
        id=current.id,
        user_id=current.user_id,
        type=current.type,
        total=current.total,
        balance=current.balance,
        created_at=fish_time(current.created_at),
        updated_at=fish_time(current.updated_at),
        finished_at=fish_time(current.finished_at),
    )

"""Profile: the account's tier, credits and quota; its webhook URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from openfish.api.bodies import body_schema, read_model
from openfish.api.deps import AccountsDep, BillingDep, CurrentAccount, SettingsDep, WebhooksDep
from openfish.api.envelopes import error_responses
from openfish.paths import V1
from openfish.services.accounts.billing import BillingService
from openfish.services.webhooks.rules import validate_webhook_url
from openfish.store.models import Account

router = APIRouter(prefix=V1, tags=["profile"])


class Profile(BaseModel):
    """The account as the API shows it to its owner."""

    user_id: str = Field(examples=["user_0123456789abcdef0123456789abcdef"])
    tier: str = Field(examples=["pro"])
    credits: int = Field(description="Credit balance.")
    api_quota_remaining: int = Field(
        description="Credits that may still be spent this month: the monthly quota left, "
        "capped by the balance."
    )
    webhookUrl: str | None = Field(description="Where job notifications are sent, if set.")
    webhookSecret: str | None = Field(
        description="Key of the HMAC-SHA256 signature on webhook deliveries (set with the webhook)."
    )
    features: dict[str, bool] = Field(description="Rollout flags, e.g. realtime_tts.")


class ProfileUpdate(BaseModel):
    """Fields of the profile the account may change."""

    model_config = ConfigDict(extra="forbid")

    webhookUrl: str | None = Field(
        description="An https URL of a public DNS name, or null or an empty string to remove it.",
        max_length=2048,
    )


def _profile(billing: BillingService, account: Account) -> Profile:
    return Profile(
        user_id=account.id,
        tier=account.tier,
        credits=account.credits,
        api_quota_remaining=billing.quota_remaining(account),
        webhookUrl=account.webhook_url,
        webhookSecret=account.webhook_secret if account.webhook_url else None,
        features={name: bool(on) for name, on in account.features.items()},
    )


@router.get("/profile", response_model=Profile, responses=error_responses())
async def get_profile(principal: CurrentAccount, accounts: AccountsDep, billing: BillingDep) -> Profile:
    """The calling account's tier, credit balance and remaining API quota."""
    account = await accounts.get_account(principal.account_id)
    return _profile(billing, account)


@router.post(
    "/profile",
    response_model=Profile,
    responses=error_responses(415),
    openapi_extra=body_schema(ProfileUpdate),
)
async def update_profile(
    request: Request,
    principal: CurrentAccount,
    accounts: AccountsDep,
    billing: BillingDep,
    webhooks: WebhooksDep,
    settings: SettingsDep,
) -> Profile:
    """Set or clear the account's webhook URL."""
    update = await read_model(request, ProfileUpdate)
    url = update.webhookUrl
    if url == "":
        url = None
    if url is not None:
        url = validate_webhook_url(url, settings.webhooks)
    account = await accounts.set_webhook(principal.account_id, url)
    if url is not None:
        await webhooks.secret_for(principal.account_id)
        account = await accounts.get_account(principal.account_id)
    return _profile(billing, account)

"""The ``openfish`` command: serve the API and manage accounts and tokens."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from openfish.api.sockets import websocket_options
from openfish.app import create_app
from openfish.cli_queue import queue
from openfish.cli_transcribe import transcribe
from openfish.cli_tts import tts
from openfish.config import Settings
from openfish.container import Services, build_services
from openfish.errors import OpenfishError
from openfish.logs import configure_logging, log_config
from openfish.services.accounts.accounts import IssuedToken
from openfish.store.database import Database

T = TypeVar("T")

app = typer.Typer(help="openfish: a self-hosted FishSpeech Open API server.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")

console = Console()
errors = Console(stderr=True)


def _with_services(work: Callable[[Services], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` against a migrated database, turning domain errors into a clean exit."""

    async def run() -> T:
        services = build_services(settings or Settings())
        try:
            await services.db.migrate()
            return await work(services)
        finally:
            await services.db.dispose()

    try:
        return asyncio.run(run())
    except OpenfishError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _show_token(issued: IssuedToken, title: str) -> None:
    # Plain lines, never wrapped, so the token can be copied whole from any terminal.
    console.print(f"[bold]{title}[/bold] (account {issued.account_id}, token {issued.token_id}):")
    console.print(issued.plaintext, soft_wrap=True, highlight=False, markup=False)
    console.print("This is the only time the token is shown; store it now.")


def _table(*columns: str) -> Table:
    table = Table()
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "account"))
    return table


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default from settings).")] = None,
) -> None:
    """Migrate the database, create the first account if there is none, and serve the API."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    first = _with_services(lambda services: services.accounts.bootstrap(), settings)
    if first is not None:
        account, issued = first
        console.print(
            f"Created the first account [bold]{account.id}[/bold] (tier {account.tier}, "
            f"{account.credits} credits)."
        )
        _show_token(issued, "Your API token")
    configure_logging(settings.log_level)
    console.print(f"openfish listening on http://{settings.host}:{settings.port}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # uvicorn applies its own logging config otherwise, replacing openfish's handlers (and with
        # them the redaction of tokens in WebSocket handshake lines) on its loggers.
        log_config=log_config(settings.log_level),
        proxy_headers=False,
        access_log=False,  # openfish.access logs each request with its request id instead
        **websocket_options(settings),
    )


app.command("tts")(tts)
app.command("transcribe")(transcribe)
# Everything after `queue` is procrastinate's, options included.
app.command(
    "queue",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)(queue)


@app.command()
def worker() -> None:
    """Run jobs (and webhook deliveries) against the configured database until SIGINT/SIGTERM.

    Any number of workers may run beside ``openfish serve`` (set ``OPENFISH_JOBS__EMBEDDED_WORKER=false``
    there to leave all jobs to them); each claims jobs with a lease, so none runs twice at once.
    """
    settings = Settings()
    configure_logging(settings.log_level)

    async def run() -> None:
        services = build_services(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # The same start and stop as `openfish serve`, as a worker: every model, all background work.
        await services.start(worker=True)
        try:
            console.print(f"openfish worker {services.job_worker.name} running")
            await stop.wait()
        finally:
            await services.stop()

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Apply pending database migrations and print the revision. Every start does this too; on
    PostgreSQL nodes that start together take turns under an advisory lock."""
    settings = Settings()

    async def run() -> str | None:
        db = Database(settings.database_url, sqlite_busy_timeout_ms=settings.database.sqlite_busy_timeout_ms)
        try:
            await db.migrate()
            return await db.revision()
        finally:
            await db.dispose()

    console.print(f"database at revision {asyncio.run(run())}")


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Option(help="A label for the account.")],
    tier: Annotated[str, typer.Option(help="A configured tier.")] = "free",
    credits: Annotated[int, typer.Option(min=0, help="Starting credits.")] = 0,
    token: Annotated[bool, typer.Option("--token/--no-token", help="Also issue a token.")] = True,
) -> None:
    """Create an account (and, by default, its first token)."""

    async def work(services: Services) -> None:
        account = await services.accounts.create_account(name, tier, credits)
        console.print(
            f"Created account [bold]{account.id}[/bold] (tier {account.tier}, {account.credits} credits)."
        )
        if token:
            _show_token(await services.accounts.create_token(account.id, name="cli"), "API token")

    _with_services(work)


@accounts_app.command("list")
def accounts_list() -> None:
    """List accounts with their tier, balance, quota and flags."""

    async def work(services: Services) -> None:
        table = _table("id", "name", "tier", "credits", "quota left", "flags", "webhook", "created")
        for account in await services.accounts.list_accounts():
            flags = ",".join(sorted(k for k, on in account.features.items() if on)) or "-"
            table.add_row(
                account.id,
                account.name,
                account.tier,
                str(account.credits),
                str(services.billing.quota_remaining(account)),
                flags,
                account.webhook_url or "-",
                account.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)

    _with_services(work)


@accounts_app.command("top-up")
def accounts_top_up(
    account_id: Annotated[str, typer.Argument(help="The account (user_...).")],
    amount: Annotated[int, typer.Argument(min=1, help="Credits to add.")],
    memo: Annotated[str | None, typer.Option(help="Why (kept in the ledger).")] = None,
    reference: Annotated[str | None, typer.Option(help="A unique reference; a repeat adds nothing.")] = None,
) -> None:
    """Add credits to an account."""

    async def work(services: Services) -> None:
        balance = await services.billing.top_up(account_id, amount, reference=reference, memo=memo)
        console.print(f"{account_id}: balance {balance} credits.")

    _with_services(work)


@accounts_app.command("set-tier")
def accounts_set_tier(
    account_id: Annotated[str, typer.Argument(help="The account (user_...).")],
    tier: Annotated[str, typer.Argument(help="A configured tier.")],
) -> None:
    """Move an account to another tier."""

    async def work(services: Services) -> None:
        account = await services.accounts.set_tier(account_id, tier)
        console.print(f"{account.id}: tier {account.tier}.")

    _with_services(work)


@accounts_app.command("set-flag")
def accounts_set_flag(
    account_id: Annotated[str, typer.Argument(help="The account (user_...).")],
    flag: Annotated[str, typer.Argument(help="A rollout flag, e.g. realtime_tts or realtime_asr.")],
    enabled: Annotated[bool, typer.Option("--on/--off", help="Turn the flag on or off.")] = True,
) -> None:
    """Turn a feature flag on or off for an account."""

    async def work(services: Services) -> None:
        account = await services.accounts.set_feature(account_id, flag, enabled)
        console.print(f"{account.id}: {flag} {'on' if enabled else 'off'}.")

    _with_services(work)


@tokens_app.command("create")
def tokens_create(
    account_id: Annotated[str, typer.Argument(help="The account (user_...).")],
    name: Annotated[str, typer.Option(help="A label for the token.")] = "",
) -> None:
    """Issue a new token; it is printed once."""
    issued = _with_services(lambda services: services.accounts.create_token(account_id, name))
    _show_token(issued, "API token")


@tokens_app.command("list")
def tokens_list(
    account_id: Annotated[str | None, typer.Option("--account", help="Only this account's tokens.")] = None,
) -> None:
    """List tokens (never their secrets)."""

    async def work(services: Services) -> None:
        table = _table("id", "account", "name", "created", "last used", "revoked")
        for token in await services.accounts.list_tokens(account_id):
            table.add_row(
                token.id,
                token.account_id,
                token.name or "-",
                token.created_at.strftime("%Y-%m-%d %H:%M"),
                token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never",
                token.revoked_at.strftime("%Y-%m-%d %H:%M") if token.revoked_at else "-",
            )
        console.print(table)

    _with_services(work)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token id (tok_...).")]) -> None:
    """Revoke a token; requests with it answer 401 from then on."""
    token = _with_services(lambda services: services.accounts.revoke_token(token_id))
    console.print(f"{token.id} revoked.")


def main() -> None:
    """Entry point of the ``openfish`` script."""
    app()

"""The first account: made once on an empty database, by one node even when several start together."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openfish.config import Settings
from openfish.services.accounts.accounts import AccountService
from openfish.services.accounts.billing import BillingService
from openfish.store.database import Database
from tests.postgres import fresh_database


def node(url: str, data_dir: Path) -> tuple[Database, AccountService]:
    """One more node's account service on the database at ``url`` (its own engine)."""
    settings = Settings(data_dir=data_dir, database={"url": url}, bootstrap={"enabled": True})
    db = Database(settings.database_url)
    return db, AccountService(db, settings, BillingService(db, settings))


async def test_nodes_starting_together_make_one_first_account(postgres: str, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    nodes = [node(url, tmp_path / str(index)) for index in range(4)]
    try:
        await nodes[0][0].migrate()
        for db, _ in nodes:  # connected already, as started nodes are: they race from the first step
            await db.ping()
        made = await asyncio.gather(*(accounts.bootstrap() for _, accounts in nodes))
        [(account, token)] = [first for first in made if first is not None]
        assert await nodes[1][1].count_accounts() == 1
        assert account.credits == Settings().bootstrap.credits
        assert token.account_id == account.id
        assert await nodes[2][1].bootstrap() is None  # a later start finds the account
    finally:
        for db, _ in nodes:
            await db.dispose()


async def test_a_restart_on_sqlite_makes_no_second_account(tmp_path: Path) -> None:
    db, accounts = node(f"sqlite+aiosqlite:///{tmp_path / 'openfish.db'}", tmp_path)
    try:
        await db.migrate()
        assert await accounts.bootstrap() is not None
        assert await accounts.bootstrap() is None
        assert await accounts.count_accounts() == 1
    finally:
        await db.dispose()

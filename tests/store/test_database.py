"""The embedded SQLite store: WAL mode, migrations, serialized writers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from openfish.store.database import Database


async def test_sqlite_runs_in_wal_mode_and_migrations_are_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'openfish.db'}")
    try:
        await db.migrate()
        await db.migrate()
        async with db.session() as session:
            mode = await session.scalar(text("PRAGMA journal_mode"))
            version = await session.scalar(text("SELECT version_num FROM alembic_version"))
            tables = set(
                (await session.scalars(text("SELECT name FROM sqlite_master WHERE type='table'"))).all()
            )
        assert mode == "wal"
        assert version == "0006"
        expected = {"accounts", "api_tokens", "ledger_entries", "credit_holds", "voices", "jobs"}
        assert expected | {"server_secrets"} <= tables
    finally:
        await db.dispose()


async def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'openfish.db'}")
    try:
        await db.migrate()

        async def insert_then_fail() -> None:
            async with db.transaction() as session:
                await session.execute(
                    text(
                        "INSERT INTO accounts (id, name, tier, credits, quota_period, quota_used, features,"
                        " created_at, updated_at) VALUES ('user_x', 'x', 'pro', 0, '', 0, '{}',"
                        " '2026-01-01', '2026-01-01')"
                    )
                )
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError, match="abort"):
            await insert_then_fail()
        async with db.session() as session:
            assert await session.scalar(text("SELECT count(*) FROM accounts")) == 0
    finally:
        await db.dispose()

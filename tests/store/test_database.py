"""The embedded SQLite store: WAL mode, migrations, serialized writers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from openfish.config import Settings
from openfish.store.database import Database
from tests.postgres import fresh_database


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
        assert version == "0007"
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


async def test_nodes_starting_together_on_postgresql_migrate_once_without_racing(postgres: str) -> None:
    url = fresh_database(postgres)
    nodes = [Database(url) for _ in range(4)]
    try:
        async with asyncio.timeout(60):  # without the lock, concurrent DDL blocks or fails
            await asyncio.gather(*(node.migrate() for node in nodes))
        assert {await node.revision() for node in nodes} == {"0007"}
        async with nodes[0].session() as session:
            tables = set(
                (
                    await session.scalars(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                    )
                ).all()
            )
        assert {"accounts", "ledger_entries", "credit_holds", "jobs", "voices", "server_secrets"} <= tables
    finally:
        for node in nodes:
            await node.dispose()


def test_a_plain_postgresql_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    for given in ("postgresql://u:p@db.internal:5432/openfish", "postgres://u:p@db.internal:5432/openfish"):
        settings = Settings(data_dir=tmp_path, database={"url": given})
        assert settings.database_url == "postgresql+psycopg://u:p@db.internal:5432/openfish"
    explicit = "postgresql+psycopg://u:p@db.internal/openfish"
    assert Settings(data_dir=tmp_path, database={"url": explicit}).database_url == explicit

"""The embedded SQLite store: WAL mode, migrations, serialized writers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from openfish.config import Settings
from openfish.store.database import POSTGRESQL_POOL_SIZE, Database, alembic_config
from tests.postgres import fresh_database

#: The newest migration: what every migrated database is at.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


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
        assert version == HEAD
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
        assert {await node.revision() for node in nodes} == {HEAD}
        async with nodes[0].session() as session:
            tables = set(
                (
                    await session.scalars(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                    )
                ).all()
            )
        assert {"accounts", "ledger_entries", "credit_holds", "jobs", "voices", "server_secrets"} <= tables
        assert {"procrastinate_jobs", "procrastinate_events"} <= tables  # the job queue's (0008)
    finally:
        for node in nodes:
            await node.dispose()


def test_a_plain_postgresql_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    for given in ("postgresql://u:p@db.internal:5432/openfish", "postgres://u:p@db.internal:5432/openfish"):
        settings = Settings(data_dir=tmp_path, database={"url": given})
        assert settings.database_url == "postgresql+psycopg://u:p@db.internal:5432/openfish"
    explicit = "postgresql+psycopg://u:p@db.internal/openfish"
    assert Settings(data_dir=tmp_path, database={"url": explicit}).database_url == explicit


async def test_postgresql_connections_come_from_a_fixed_pool(postgres: str) -> None:
    db = Database(fresh_database(postgres))
    try:
        held = [await db.engine.connect() for _ in range(POSTGRESQL_POOL_SIZE)]
        # No overflow connection is opened: the next caller waits for one to come back.
        waiting = asyncio.ensure_future(db.engine.connect())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await held.pop().close()
        held.append(await asyncio.wait_for(waiting, 5))
        for connection in held:
            await connection.close()
    finally:
        await db.dispose()

"""The async database: engine, sessions, SQLite tuning and migrations at start.

Reads run in ordinary (deferred) transactions. Writes go through :meth:`Database.transaction`,
which on SQLite opens ``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout instead of
failing when a read lock cannot be upgraded. PostgreSQL needs nothing special: every money-moving
statement is a conditional ``UPDATE`` that re-checks its guard under the row lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Result, Table, event, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

_MIGRATIONS = Path(__file__).with_name("migrations")
#: What a database that cannot be reached (stopped, restarting, network gone) or is too busy (SQLite's
#: busy timeout) raises. Nothing was written: the request answers 503, background loops wait and retry.
UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
_IMMEDIATE = "openfish_begin_immediate"
#: Connections a process keeps to PostgreSQL, shared by all its requests; callers beyond them wait
#: in the pool (in this process, which costs next to nothing) rather than in the server's lock
#: queues. A fixed pool: SQLAlchemy's default of 5 plus 10 "overflow" connections closed again on
#: return made a burst open and close connections over and over (a server process each), and more
#: connections only made the server work harder on the same rows (``bench/README.md``).
POSTGRESQL_POOL_SIZE = 10


class Database:
    """One engine and its session factories; built by ``create_app`` or the CLI, never at import."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        connect_args: dict[str, Any] = {}
        pool: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args["timeout"] = sqlite_busy_timeout_ms / 1000
        else:
            # A server database may restart under us: test pooled connections before use, so the
            # first request after a restart gets a fresh connection instead of a dead one.
            pool = {"pool_pre_ping": True, "pool_size": POSTGRESQL_POOL_SIZE, "max_overflow": 0}
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, connect_args=connect_args, **pool)
        if self.is_sqlite:
            _tune_sqlite(self.engine, sqlite_busy_timeout_ms)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (and writes that need no queueing); closed on exit."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on any exception."""
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Run the block while no other process on this database runs an ``exclusive(name)`` block
        (for one-time work several nodes may start together, such as creating the first account).

        PostgreSQL: a transaction-scoped advisory lock on a connection of its own, released when
        the block ends, or when the connection dies with its process. SQLite serves one node, whose
        own work is not concurrent here: nothing to wait for.
        """
        if self.is_sqlite:
            yield
            return
        async with self.engine.connect() as connection, connection.begin():
            await connection.execute(_NAMED_LOCK, {"name": name})
            yield

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Apply every pending Alembic migration (creating the SQLite file's folder first)."""
        database = self.engine.url.database
        if self.is_sqlite and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def revision(self) -> str | None:
        """The migration the database is at (None before the first)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


async def insert_if_absent(
    session: AsyncSession, table: Table | type[Any], values: dict[str, Any], *, key: list[str]
) -> bool:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` in the session's transaction (both supported
    databases speak it): a repeat is a no-op, with no IntegrityError to spoil the transaction.
    Returns whether the row was inserted."""
    insert = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
    # RETURNING says whether a row went in on both databases; a row count does not (psycopg gives
    # none for an insert that returns the generated id).
    returned: Result[Any] = await session.execute(statement.returning(literal_column("1")))
    return returned.first() is not None


def alembic_config() -> Config:
    """Alembic's configuration for openfish's migrations (bind a connection via ``attributes``)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


#: ``exclusive(name)``'s lock: this first key (ASCII "oflk") and the name's hash as the second, so
#: that it meets neither the migration lock nor the counters' (``store/sql_counters.py``).
_NAMED_LOCK = text(f"SELECT pg_advisory_xact_lock({0x6F666C6B}, hashtext(:name))")

#: Held while migrating on PostgreSQL, so nodes starting together migrate one after another (the
#: later ones find nothing left to do). Any fixed number works; this one is "openfish" in ASCII.
_MIGRATION_LOCK = 0x6F70656E66697368


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Released when this transaction ends (the upgrade's own).
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

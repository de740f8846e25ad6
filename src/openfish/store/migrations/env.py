"""Alembic environment: always handed a live connection by :meth:`Database.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from openfish.store.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("openfish migrations run through Database.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

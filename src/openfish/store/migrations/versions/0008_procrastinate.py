"""Jobs dispatched by procrastinate on PostgreSQL: ``jobs.queue_ref`` (the job's id in procrastinate)
on every database, and procrastinate's own schema on PostgreSQL.

The schema is the one the installed procrastinate ships (``SchemaManager.get_schema``), applied
only where its tables do not exist yet: a database that already has them (an earlier install, or
procrastinate's own ``schema --apply``) is left as it is. Jobs queued before this revision get
their procrastinate row when a worker first opens the queue (``ProcrastinateJobQueue``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("queue_ref", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    installed = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    if installed is None:
        # Driver level (many statements, dollar-quoted functions); SQLAlchemy still hands psycopg a
        # parameter list, so its literal percent signs are doubled for psycopg's placeholder pass.
        bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    # procrastinate's tables stay: other applications may share them, and they hold no openfish state.
    op.drop_column("jobs", "queue_ref")

"""Voice analysis becomes a job kind: every voice still ``processing`` gets its analysis job.

Earlier versions analysed voices in the API process and picked unfinished ones up at start; from
this version the job queue does it (and ``openfish worker`` can). The job's credit hold is the
voice's existing one (``voice:<id>``), so nothing is held twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_voices = sa.table(
    "voices",
    sa.column("id", sa.String),
    sa.column("account_id", sa.String),
    sa.column("status", sa.String),
    sa.column("credits", sa.BigInteger),
)
_jobs = sa.table(
    "jobs",
    sa.column("id", sa.String),
    sa.column("account_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("attempt", sa.Integer),
    sa.column("max_attempts", sa.Integer),
    sa.column("run_after", sa.DateTime(timezone=True)),
    sa.column("credits", sa.BigInteger),
    sa.column("progress", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    connection = op.get_bind()
    pending = connection.execute(
        sa.select(_voices.c.id, _voices.c.account_id, _voices.c.credits).where(
            _voices.c.status == "processing"
        )
    ).all()
    now = datetime.now(UTC)
    for voice_id, account_id, credits in pending:
        connection.execute(
            _jobs.insert().values(
                id=f"job_{uuid.uuid4().hex}",
                account_id=account_id,
                kind="voice",
                status="queued",
                payload={"voice_id": voice_id},
                attempt=0,
                max_attempts=3,
                run_after=now,
                credits=credits,
                progress=0,
                created_at=now,
                updated_at=now,
            )
        )


def downgrade() -> None:
    # The older version analyses processing voices itself at start: only the jobs go.
    op.execute(_jobs.delete().where(_jobs.c.kind == "voice"))

"""Voice usage: how often each account spoke with each voice (the Fish Audio API's ``task_count``
and its ``score`` sort). Starts empty: earlier synthesis was not counted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voice_usage",
        sa.Column("voice_id", sa.String(length=200), primary_key=True),
        sa.Column("account_id", sa.String(length=40), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("task_count", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("voice_usage")

"""Counters on the database (``store/sql_counters.py``): sliding-window events and capped slots,
shared by every API node on one database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counter_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )
    # A key's live events (count, oldest) are one range of the first; sweeps use the second.
    op.create_index("ix_counter_events_key_expires", "counter_events", ["key", "expires_at"])
    op.create_index("ix_counter_events_expires", "counter_events", ["expires_at"])
    op.create_table(
        "counter_slots",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_counter_slots_key_expires", "counter_slots", ["key", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_counter_slots_key_expires", table_name="counter_slots")
    op.drop_table("counter_slots")
    op.drop_index("ix_counter_events_expires", table_name="counter_events")
    op.drop_index("ix_counter_events_key_expires", table_name="counter_events")
    op.drop_table("counter_events")

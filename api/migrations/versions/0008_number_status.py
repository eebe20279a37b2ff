"""Number status learned from calls, with evidence.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("evidence", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_status_events")),
    )
    op.create_index(
        op.f("ix_number_status_events_number_key"), "number_status_events", ["number_key"]
    )


def downgrade() -> None:
    op.drop_table("number_status_events")

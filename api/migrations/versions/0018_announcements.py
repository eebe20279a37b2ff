"""Carrier announcements in early media awaiting transcription.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("number_key", sa.String(64), nullable=False),
        sa.Column("number_masked", sa.String(32), nullable=False),
        sa.Column("caller_id", sa.String(32), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=False),
        sa.Column("sip_reason", sa.String(200), nullable=False),
        sa.Column("audio_path", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("transcript", sa.String(1000), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
        sa.UniqueConstraint("call_id", name=op.f("uq_announcements_call_id")),
    )
    op.create_index(op.f("ix_announcements_number_key"), "announcements", ["number_key"])
    op.create_index(op.f("ix_announcements_caller_id"), "announcements", ["caller_id"])
    op.create_index(op.f("ix_announcements_state"), "announcements", ["state"])


def downgrade() -> None:
    op.drop_table("announcements")

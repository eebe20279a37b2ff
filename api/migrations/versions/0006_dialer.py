"""Agents' SIP credentials and call attempts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_accounts",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_sip_accounts")),
    )
    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("sip_call_id", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("number_key", sa.String(64), nullable=False),
        sa.Column("number_masked", sa.String(32), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("sip_status", sa.Integer(), nullable=False),
        sa.Column("sip_reason", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(40), nullable=True),
        sa.Column("ended_by", sa.String(16), nullable=False),
        sa.Column("caller_id", sa.String(32), nullable=True),
        sa.Column("recording_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_attempts")),
        sa.UniqueConstraint("call_id", name=op.f("uq_call_attempts_call_id")),
    )
    for column in ("agent", "number_key", "debtor_id", "started_at"):
        op.create_index(op.f(f"ix_call_attempts_{column}"), "call_attempts", [column])


def downgrade() -> None:
    op.drop_table("call_attempts")
    op.drop_table("sip_accounts")

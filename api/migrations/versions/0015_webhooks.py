"""Call-outcome webhooks and their delivery outbox.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("dedupe_key", sa.String(100), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("qa_result_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_webhook_deliveries_delivery_id")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_deliveries_dedupe_key")),
    )
    op.create_index(op.f("ix_webhook_deliveries_attempt_id"), "webhook_deliveries", ["attempt_id"])
    op.create_index(op.f("ix_webhook_deliveries_status"), "webhook_deliveries", ["status"])
    op.create_index(
        op.f("ix_webhook_deliveries_next_try_at"), "webhook_deliveries", ["next_try_at"]
    )
    op.create_table(
        "webhook_cursors",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("floor_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_webhook_cursors")),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_table("webhook_deliveries")

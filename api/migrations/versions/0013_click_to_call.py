"""SIP registrations and click-to-call requests.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_registrations",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("contact", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_sip_registrations")),
    )
    op.create_table(
        "call_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("number_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("number_masked", sa.String(32), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.String(32), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_requests")),
    )
    op.create_index(op.f("ix_call_requests_agent"), "call_requests", ["agent"])
    op.create_index(op.f("ix_call_requests_status"), "call_requests", ["status"])


def downgrade() -> None:
    op.drop_table("call_requests")
    op.drop_table("sip_registrations")

"""Calls in flight: each allowed call is booked at its decision, before the INVITE leaves.

`attempt_reservations` holds a call from the decision that allowed it until it
is booked in `call_attempts` (the row is replaced in the same commit), so the
call policy counts calls that are ringing or talking, on every worker and host.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_INDEXED = ("number_key", "debtor_id", "reserved_at", "worker", "caller_id")


def upgrade() -> None:
    op.create_table(
        "attempt_reservations",
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("number_key", sa.String(64), nullable=False),
        sa.Column("number_masked", sa.String(32), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=True),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("caller_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_attempt_reservations")),
    )
    for column in _INDEXED:
        op.create_index(op.f(f"ix_attempt_reservations_{column}"), "attempt_reservations", [column])


def downgrade() -> None:
    for column in _INDEXED:
        op.drop_index(op.f(f"ix_attempt_reservations_{column}"), "attempt_reservations")
    op.drop_table("attempt_reservations")

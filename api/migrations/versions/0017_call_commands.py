"""Commands to running calls (pause, resume) and pause events awaiting audit.

Also: the calls workers carry now (`live_calls`), the debtor's facts a
click-to-call needs for the call policy (`call_requests`), and each call's
hold periods (`call_attempts.holds_json`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_calls",
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("worker", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_live_calls")),
    )
    op.create_index(op.f("ix_live_calls_agent"), "live_calls", ["agent"])
    op.create_index(op.f("ix_live_calls_worker"), "live_calls", ["worker"])
    op.create_table(
        "call_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_commands")),
    )
    op.create_index(op.f("ix_call_commands_call_id"), "call_commands", ["call_id"])
    op.create_index(op.f("ix_call_commands_status"), "call_commands", ["status"])
    op.create_table(
        "pause_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=True),
        sa.Column("command_id", sa.Integer(), nullable=True),
        sa.Column("audited_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pause_events")),
    )
    op.create_index(op.f("ix_pause_events_call_id"), "pause_events", ["call_id"])
    op.create_index(op.f("ix_pause_events_audited_at"), "pause_events", ["audited_at"])
    with op.batch_alter_table("call_requests") as batch:
        batch.add_column(sa.Column("client_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("debtor_tz", sa.String(64), nullable=True))
        batch.add_column(sa.Column("callback_windows_json", sa.Text(), nullable=True))
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("holds_json", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("holds_json")
    with op.batch_alter_table("call_requests") as batch:
        batch.drop_column("callback_windows_json")
        batch.drop_column("debtor_tz")
        batch.drop_column("client_id")
    op.drop_table("pause_events")
    op.drop_table("call_commands")
    op.drop_table("live_calls")

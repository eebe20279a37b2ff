"""Audit MACs, login sources, playbacks, client contracts, retrieval requests' client.

The MAC column is nullable: a migration has no audit key, so entries written
before this revision stay without one. They are the legacy segment at the
start of the log, still hash-chained; the first anchor the API writes records
where the segment ends and seals it (see api/audit/chain.py).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("login_failures") as batch:
        batch.add_column(sa.Column("source", sa.String(length=64), nullable=True))
        batch.create_index("ix_login_failures_source", ["source"])
    with op.batch_alter_table("retrieval_requests") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
    op.create_table(
        "login_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("last_ok", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_sources"),
        sa.UniqueConstraint("username", "source", name="uq_login_sources_username"),
    )
    op.create_table(
        "playbacks",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_playbacks"),
    )
    op.create_table(
        "client_contracts",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_client_contracts"),
    )


def downgrade() -> None:
    op.drop_table("client_contracts")
    op.drop_table("playbacks")
    op.drop_table("login_sources")
    with op.batch_alter_table("retrieval_requests") as batch:
        batch.drop_column("client_id")
    with op.batch_alter_table("login_failures") as batch:
        batch.drop_index("ix_login_failures_source")
        batch.drop_column("source")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("mac")

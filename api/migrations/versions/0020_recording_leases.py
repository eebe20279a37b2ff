"""Upload leases on recordings, and the time of each copy's PUT whose outcome is unknown.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("primary_put_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replica_put_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        for column in ("replica_put_at", "primary_put_at", "lease_until", "lease_owner"):
            batch.drop_column(column)

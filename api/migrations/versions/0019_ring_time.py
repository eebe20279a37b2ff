"""Ring time of each call attempt (INVITE to the trunk until answered or given up).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("ring_s", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("ring_s")

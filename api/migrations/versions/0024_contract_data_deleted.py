"""When an ended contract's client data was deleted.

`client_contracts.data_deleted_at` is empty until the retention job, once
`delete_after` has passed, has deleted the client's debtors and what was
derived from its calls (transcripts, QA results); its first pass is audited
with counts even when there was nothing left, so an auditor can see it ran.
Later passes delete what arrived since and are audited only when they find
something.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client_contracts") as batch:
        batch.add_column(sa.Column("data_deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("client_contracts") as batch:
        batch.drop_column("data_deleted_at")

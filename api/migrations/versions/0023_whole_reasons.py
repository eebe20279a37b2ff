"""Call reasons kept whole: a refusal's reason ends with the next allowed time.

`call_attempts.sip_reason` (200 characters) and `call_requests.detail` (300)
cut Reg F refusals before "Next allowed: ...", which the agent's "My calls",
the call outcomes and a click-to-call's status then lost. Both become TEXT.
The downgrade cuts longer values back to fit.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.alter_column("sip_reason", type_=sa.Text(), existing_type=sa.String(200))
    with op.batch_alter_table("call_requests") as batch:
        batch.alter_column("detail", type_=sa.Text(), existing_type=sa.String(300))


def downgrade() -> None:
    op.execute("UPDATE call_attempts SET sip_reason = substr(sip_reason, 1, 200)")
    op.execute("UPDATE call_requests SET detail = substr(detail, 1, 300)")
    with op.batch_alter_table("call_attempts") as batch:
        batch.alter_column("sip_reason", type_=sa.String(200), existing_type=sa.Text())
    with op.batch_alter_table("call_requests") as batch:
        batch.alter_column("detail", type_=sa.String(300), existing_type=sa.Text())

"""How sure the machine is of each QA flag, as a column reviewers can sort by.

`qa_flags.score` is a meaning-based flag's cosine to its nearest example, a
phrase flag's ASR confidence of its words (`qa_scoring.store.flag_score`).
It was only in the result JSON; flags stored before this revision get it from
there: a result's flags were stored in the JSON's order, so the n-th row of a
result is its n-th flag (taken only where the rule and start agree).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-10
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_flags = sa.table(
    "qa_flags",
    sa.column("id", sa.Integer),
    sa.column("result_id", sa.Integer),
    sa.column("rule", sa.String),
    sa.column("start_s", sa.Float),
    sa.column("score", sa.Float),
)
_results = sa.table("qa_results", sa.column("id", sa.Integer), sa.column("result_json", sa.Text))


def _score(item: dict[str, Any]) -> float | None:
    value = item.get("score")
    if value is None:
        value = item.get("confidence")
    return round(float(value), 4) if isinstance(value, int | float) else None


def upgrade() -> None:
    with op.batch_alter_table("qa_flags") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
    connection = op.get_bind()
    stored: dict[int, list[tuple[int, str, float]]] = {}
    for row in connection.execute(
        sa.select(_flags.c.id, _flags.c.result_id, _flags.c.rule, _flags.c.start_s).order_by(
            _flags.c.id
        )
    ):
        stored.setdefault(row.result_id, []).append((row.id, row.rule, row.start_s))
    for result_id, rows in stored.items():
        text = connection.scalar(
            sa.select(_results.c.result_json).where(_results.c.id == result_id)
        )
        try:
            items = json.loads(text or "{}").get("flags") or []
        except (ValueError, AttributeError):
            continue
        if len(items) != len(rows):
            continue
        for (flag_id, rule, start), item in zip(rows, items, strict=True):
            if not isinstance(item, dict) or item.get("rule") != rule:
                continue
            if abs(float(item.get("start", -1.0)) - float(start)) > 0.01:
                continue
            score = _score(item)
            if score is not None:
                connection.execute(
                    sa.update(_flags).where(_flags.c.id == flag_id).values(score=score)
                )


def downgrade() -> None:
    with op.batch_alter_table("qa_flags") as batch:
        batch.drop_column("score")

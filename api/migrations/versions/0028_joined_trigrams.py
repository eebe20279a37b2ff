"""PostgreSQL: the trigram index spans word boundaries, so phrases are selective.

pg_trgm splits text into words and never makes a trigram across a space, so
for "date of birth" the index could only say "has date, of and birth
somewhere": at 10 million segments that was 25,000 rows to fetch and recheck
for 346 matches (8 s). Indexed with spaces replaced by a letter (`ǀ`,
U+01C0, which pg_trgm counts as part of a word), the trigrams "eǀo" and
"fǀb" say "date of" and "of birth", and the index hands back little more
than the matches. Searches keep the exact ILIKE on the text as well, so a
real `ǀ` in a transcript can only cost a recheck, never a wrong hit.

Built CONCURRENTLY, outside a transaction: at 10 million segments the build
takes minutes, and a plain CREATE INDEX would hold every transcript write
(the transcribe workers of a running site) for all of them. The old index
is dropped only once the new one serves, so search stays indexed
throughout. A build that was interrupted leaves an invalid index behind,
which is dropped and built again rather than kept by IF NOT EXISTS.

SQLite's FTS5 trigram tokenizer already makes trigrams across spaces:
nothing changes there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

#: Must stay the expression `transcribe.search` queries, or the index is not used.
_JOINED = "replace(text, ' ', 'ǀ')"
_NEW = "ix_transcript_segments_joined_trgm"
_OLD = "ix_transcript_segments_text_trgm"


def _build(name: str, expression: str) -> None:
    """CREATE INDEX CONCURRENTLY, after dropping what an interrupted build left invalid."""
    invalid = (
        op.get_bind()
        .execute(
            text("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": name},
        )
        .scalar()
    )
    if invalid:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON transcript_segments "
        f"USING gin ({expression} gin_trgm_ops)"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        _build(_NEW, f"({_JOINED})")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_OLD}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        _build(_OLD, "text")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_NEW}")

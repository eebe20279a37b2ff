"""PostgreSQL: the trigram index spans word boundaries, so phrases are selective.

pg_trgm splits text into words and never makes a trigram across a space, so
for "date of birth" the index could only say "has date, of and birth
somewhere": at 10 million segments that was 25,000 rows to fetch and recheck
for 346 matches (8 s). Indexed with spaces replaced by a letter (`ǀ`,
U+01C0, which pg_trgm counts as part of a word), the trigrams "eǀo" and
"fǀb" say "date of" and "of birth", and the index hands back little more
than the matches. Searches keep the exact ILIKE on the text as well, so a
real `ǀ` in a transcript can only cost a recheck, never a wrong hit.

SQLite's FTS5 trigram tokenizer already makes trigrams across spaces:
nothing changes there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

#: Must stay the expression `transcribe.search` queries, or the index is not used.
_JOINED = "replace(text, ' ', 'ǀ')"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_transcript_segments_text_trgm")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_transcript_segments_joined_trgm ON transcript_segments "
        f"USING gin (({_JOINED}) gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_transcript_segments_joined_trgm")
    op.execute(
        "CREATE INDEX ix_transcript_segments_text_trgm ON transcript_segments "
        "USING gin (text gin_trgm_ops)"
    )

"""Transcription queue, transcripts, segments and their search indexes.

SQLite: two external-content FTS5 tables kept by triggers: a trigram index for
substring search (queries of 3+ characters, any language) and a unicode61
index over unigram/bigram tokens (one- and two-character Chinese queries).
PostgreSQL: pg_trgm GIN on the text for ILIKE, and a GIN tsvector over the
same gram tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STATUS = sa.Enum(
    "queued", "running", "done", "dead", name="jobstatus", native_enum=False, length=16
)

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE segment_tri USING fts5(text, content='transcript_segments', "
    "content_rowid='id', tokenize='trigram')",
    "CREATE VIRTUAL TABLE segment_grams USING fts5(grams, content='transcript_segments', "
    "content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER transcript_segments_ai AFTER INSERT ON transcript_segments BEGIN "
    "INSERT INTO segment_tri(rowid, text) VALUES (new.id, new.text); "
    "INSERT INTO segment_grams(rowid, grams) VALUES (new.id, new.grams); END",
    "CREATE TRIGGER transcript_segments_ad AFTER DELETE ON transcript_segments BEGIN "
    "INSERT INTO segment_tri(segment_tri, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO segment_grams(segment_grams, rowid, grams) "
    "VALUES ('delete', old.id, old.grams); END",
    "CREATE TRIGGER transcript_segments_au AFTER UPDATE ON transcript_segments BEGIN "
    "INSERT INTO segment_tri(segment_tri, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO segment_grams(segment_grams, rowid, grams) "
    "VALUES ('delete', old.id, old.grams); "
    "INSERT INTO segment_tri(rowid, text) VALUES (new.id, new.text); "
    "INSERT INTO segment_grams(rowid, grams) VALUES (new.id, new.grams); END",
]

_POSTGRES_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_transcript_segments_text_trgm ON transcript_segments "
    "USING gin (text gin_trgm_ops)",
    "CREATE INDEX ix_transcript_segments_grams_tsv ON transcript_segments "
    "USING gin (to_tsvector('simple', grams))",
]


def upgrade() -> None:
    op.create_table(
        "transcription_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_transcription_jobs_recording_id_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcription_jobs")),
        sa.UniqueConstraint("recording_id", "model", name="uq_transcription_jobs_recording_model"),
    )
    op.create_index("ix_transcription_jobs_claim", "transcription_jobs", ["status", "available_at"])
    op.create_table(
        "transcripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_transcripts_recording_id_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcripts")),
        sa.UniqueConstraint("recording_id", "model", name="uq_transcripts_recording_model"),
    )
    op.create_index(op.f("ix_transcripts_recording_id"), "transcripts", ["recording_id"])
    op.create_index(op.f("ix_transcripts_created_at"), "transcripts", ["created_at"])
    op.create_table(
        "transcript_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("grams", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("words_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transcript_id"],
            ["transcripts.id"],
            name=op.f("fk_transcript_segments_transcript_id_transcripts"),
        ),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_transcript_segments_recording_id_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_segments")),
    )
    op.create_index(
        op.f("ix_transcript_segments_transcript_id"), "transcript_segments", ["transcript_id"]
    )
    op.create_index(
        op.f("ix_transcript_segments_recording_id"), "transcript_segments", ["recording_id"]
    )
    statements = _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_SEARCH
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS transcript_segments_{name}")
        op.execute("DROP TABLE IF EXISTS segment_tri")
        op.execute("DROP TABLE IF EXISTS segment_grams")
    op.drop_table("transcript_segments")
    op.drop_table("transcripts")
    op.drop_table("transcription_jobs")

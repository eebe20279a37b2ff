"""QA results, flags under review with their history, and weekly samples.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_STATE = sa.Enum(
    "open",
    "confirmed",
    "dismissed",
    "appealed",
    "upheld",
    "overturned",
    name="flagstate",
    native_enum=False,
    length=16,
)


def upgrade() -> None:
    op.create_table(
        "qa_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("pack", sa.String(64), nullable=False),
        sa.Column("pack_version", sa.String(32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"], name=op.f("fk_qa_results_recording_id_recordings")
        ),
        sa.ForeignKeyConstraint(
            ["transcript_id"],
            ["transcripts.id"],
            name=op.f("fk_qa_results_transcript_id_transcripts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_results")),
        sa.UniqueConstraint("transcript_id", "pack", name="uq_qa_results_transcript_pack"),
    )
    op.create_index(op.f("ix_qa_results_recording_id"), "qa_results", ["recording_id"])
    op.create_index(op.f("ix_qa_results_transcript_id"), "qa_results", ["transcript_id"])
    op.create_index(op.f("ix_qa_results_created_at"), "qa_results", ["created_at"])

    op.create_table(
        "qa_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("needs_listening", sa.Boolean(), nullable=False),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["qa_results.id"], name=op.f("fk_qa_flags_result_id_qa_results")
        ),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"], name=op.f("fk_qa_flags_recording_id_recordings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_flags")),
    )
    op.create_index(op.f("ix_qa_flags_result_id"), "qa_flags", ["result_id"])
    op.create_index(op.f("ix_qa_flags_recording_id"), "qa_flags", ["recording_id"])
    op.create_index(op.f("ix_qa_flags_agent"), "qa_flags", ["agent"])
    op.create_index(op.f("ix_qa_flags_state"), "qa_flags", ["state"])

    op.create_table(
        "qa_flag_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["qa_flags.id"], name=op.f("fk_qa_flag_events_flag_id_qa_flags")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_flag_events")),
    )
    op.create_index(op.f("ix_qa_flag_events_flag_id"), "qa_flag_events", ["flag_id"])

    op.create_table(
        "qa_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("recording_id", sa.String(32), nullable=False),
        sa.Column("stratum", sa.String(64), nullable=False),
        sa.Column("drawn_by", sa.String(64), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"], name=op.f("fk_qa_samples_recording_id_recordings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_samples")),
        sa.UniqueConstraint("week", "recording_id", name="uq_qa_samples_week_recording"),
    )
    op.create_index(op.f("ix_qa_samples_week"), "qa_samples", ["week"])
    op.create_index(op.f("ix_qa_samples_agent"), "qa_samples", ["agent"])


def downgrade() -> None:
    op.drop_table("qa_samples")
    op.drop_table("qa_flag_events")
    op.drop_table("qa_flags")
    op.drop_table("qa_results")

"""Tables of QA: each transcript's stored result, its flags under review, and weekly samples.

A result is kept per transcript and pack, so re-running the worker never
scores a call twice, and a call re-transcribed by a better model is scored
again beside the earlier result. Flags are copied out of the result JSON into
rows because reviewers change their state one by one; the JSON stays as the
machine's verdict at the time. Flag events are only ever appended: the
history of a dispute is what an appeal is judged on.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recording.db.engine import Base
from recording.models import Recording  # noqa: F401  (tables our foreign keys name)
from transcribe.models import TranscriptRow  # noqa: F401


class FlagState(enum.StrEnum):
    OPEN = "open"  # found by the machine, not yet looked at
    CONFIRMED = "confirmed"  # a QA reviewer agrees: counts against the agent
    DISMISSED = "dismissed"  # a QA reviewer disagrees: never counts
    APPEALED = "appealed"  # the agent disputes a confirmed flag
    UPHELD = "upheld"  # a supervisor kept the flag after the appeal
    OVERTURNED = "overturned"  # a supervisor cancelled the flag after the appeal


class QaResult(Base):
    """One transcript checked against one pack: the score and the full result JSON.

    `score` is empty and `error` says why when the transcript could not be
    checked at all (a malformed stored transcript): the row still exists so
    the worker does not try it again forever.
    """

    __tablename__ = "qa_results"
    __table_args__ = (
        UniqueConstraint("transcript_id", "pack", name="uq_qa_results_transcript_pack"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    transcript_id: Mapped[int] = mapped_column(ForeignKey("transcripts.id"), index=True)
    pack: Mapped[str] = mapped_column(String(64))
    pack_version: Mapped[str] = mapped_column(String(32))
    score: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class QaFlag(Base):
    """One flag of one result, as a reviewer works through it; `text` is already masked."""

    __tablename__ = "qa_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("qa_results.id"), index=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    needs_listening: Mapped[bool] = mapped_column(Boolean)
    # How sure the machine is, for sorting a review list: a semantic flag's cosine to its
    # nearest example, a phrase flag's ASR confidence of its words; empty before 0026.
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[FlagState] = mapped_column(
        Enum(
            FlagState, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        ),
        index=True,
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QaFlagEvent(Base):
    """One step of a flag's review, never updated or deleted."""

    __tablename__ = "qa_flag_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("qa_flags.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QaSample(Base):
    """One call drawn into an agent's weekly review sample; the seed makes the draw repeatable."""

    __tablename__ = "qa_samples"
    __table_args__ = (
        UniqueConstraint("week", "recording_id", name="uq_qa_samples_week_recording"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), index=True)  # ISO week, 2026-W48
    agent: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[str] = mapped_column(String(64))
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"))
    stratum: Mapped[str] = mapped_column(String(64))
    drawn_by: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

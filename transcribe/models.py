"""Tables of the transcription pipeline: the job queue, transcripts and their segments."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recording.db.engine import Base
from recording.models import Recording  # noqa: F401  (the table our foreign keys name)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"  # failed for good; `last_error` says why


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class TranscriptionJob(Base):
    __tablename__ = "transcription_jobs"
    __table_args__ = (
        UniqueConstraint("recording_id", "model", name="uq_transcription_jobs_recording_model"),
        Index("ix_transcription_jobs_claim", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"))
    model: Mapped[str] = mapped_column(String(255))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TranscriptRow(Base):
    """One transcription of one recording by one model; re-transcribing keeps the earlier."""

    __tablename__ = "transcripts"
    __table_args__ = (
        UniqueConstraint("recording_id", "model", name="uq_transcripts_recording_model"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    model: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SegmentRow(Base):
    """A segment as stored and searched: sensitive digits already masked."""

    __tablename__ = "transcript_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transcript_id: Mapped[int] = mapped_column(ForeignKey("transcripts.id"), index=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    speaker: Mapped[str] = mapped_column(String(16))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    #: CJK characters as unigram and bigram tokens, other words lower-cased: what
    #: one- and two-character Chinese queries match, since trigrams cannot.
    grams: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    words_json: Mapped[str] = mapped_column(Text)

"""Is transcription keeping up with the calls? Hours transcribed per hour recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recording.models import Recording
from transcribe.models import JobStatus, TranscriptionJob, TranscriptRow

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class KeepUp:
    recorded_hours: float
    transcribed_hours: float
    backlog_jobs: int
    backlog_hours: float
    dead_jobs: int

    @property
    def ratio(self) -> float | None:
        """Above 1 the backlog shrinks; None when nothing was recorded in the window."""
        return self.transcribed_hours / self.recorded_hours if self.recorded_hours else None

    def describe(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}"
        return (
            f"keep-up {ratio} (24 h: {self.transcribed_hours:.1f} h transcribed / "
            f"{self.recorded_hours:.1f} h recorded); backlog {self.backlog_jobs} jobs "
            f"({self.backlog_hours:.1f} h); {self.dead_jobs} failed"
        )


def keep_up(session: Session, now: datetime, window: timedelta = WINDOW) -> KeepUp:
    since = now - window
    recorded = session.scalar(
        select(func.coalesce(func.sum(Recording.duration_s), 0.0)).where(
            Recording.recorded_at >= since
        )
    )
    transcribed = session.scalar(
        select(func.coalesce(func.sum(TranscriptRow.duration_s), 0.0)).where(
            TranscriptRow.created_at >= since
        )
    )
    pending = (TranscriptionJob.status == JobStatus.QUEUED) | (
        TranscriptionJob.status == JobStatus.RUNNING
    )
    jobs, seconds = session.execute(
        select(func.count(), func.coalesce(func.sum(Recording.duration_s), 0.0))
        .select_from(TranscriptionJob)
        .join(Recording, Recording.id == TranscriptionJob.recording_id)
        .where(pending)
    ).one()
    dead = session.scalar(select(func.count()).where(TranscriptionJob.status == JobStatus.DEAD))
    return KeepUp(
        recorded_hours=float(recorded or 0) / 3600,
        transcribed_hours=float(transcribed or 0) / 3600,
        backlog_jobs=int(jobs),
        backlog_hours=float(seconds) / 3600,
        dead_jobs=int(dead or 0),
    )

"""The transcription job queue, in the shared database.

Workers on any host claim jobs safely: on PostgreSQL with `FOR UPDATE SKIP
LOCKED`, so workers never wait on each other; on SQLite with one conditional
UPDATE, which SQLite's single writer lock makes atomic, re-checked by status
so that two workers can never both win one job. A job that fails is retried
with backoff; a job that can never succeed (bad audio) or fails too often is
parked as DEAD with its reason, and the queue goes on. Re-running a job is
harmless: a transcript is unique per recording and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from recording.models import Recording, RecordingStatus
from transcribe.models import JobStatus, TranscriptionJob

MAX_ATTEMPTS = 5
#: A RUNNING job whose worker has been silent this long is given to another worker.
LEASE = timedelta(minutes=30)


def backoff(attempts: int) -> timedelta:
    seconds: int = 30 * 2 ** max(0, attempts - 1)
    return min(timedelta(hours=1), timedelta(seconds=seconds))


def enqueue_missing(session: Session, model: str, now: datetime, limit: int = 500) -> int:
    """Queue every recording that has no job for `model` yet: recordings enqueue themselves."""
    waiting = session.scalars(
        select(Recording.id)
        .where(
            Recording.status != RecordingStatus.DELETED,
            ~exists().where(
                and_(
                    TranscriptionJob.recording_id == Recording.id,
                    TranscriptionJob.model == model,
                )
            ),
        )
        .order_by(Recording.recorded_at)
        .limit(limit)
    ).all()
    for recording_id in waiting:
        session.add(
            TranscriptionJob(
                recording_id=recording_id,
                model=model,
                status=JobStatus.QUEUED,
                attempts=0,
                available_at=now,
                created_at=now,
            )
        )
    session.commit()
    return len(waiting)


def claim(session: Session, worker: str, now: datetime) -> TranscriptionJob | None:
    """Take the oldest available job, or None; the job comes back RUNNING and committed."""
    candidate = (
        select(TranscriptionJob.id)
        .where(TranscriptionJob.status == JobStatus.QUEUED, TranscriptionJob.available_at <= now)
        .order_by(TranscriptionJob.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidate = candidate.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(TranscriptionJob)
        .where(
            TranscriptionJob.id == candidate.scalar_subquery(),
            TranscriptionJob.status == JobStatus.QUEUED,
        )
        .values(
            status=JobStatus.RUNNING,
            claimed_by=worker,
            claimed_at=now,
            attempts=TranscriptionJob.attempts + 1,
        )
        .returning(TranscriptionJob.id)
    ).scalar()
    session.commit()
    return session.get(TranscriptionJob, claimed) if claimed is not None else None


def complete(session: Session, job: TranscriptionJob, now: datetime) -> None:
    job.status = JobStatus.DONE
    job.finished_at = now
    job.last_error = None
    session.commit()


def fail(
    session: Session, job: TranscriptionJob, reason: str, now: datetime, permanent: bool = False
) -> None:
    job.last_error = reason[:500]
    if permanent or job.attempts >= MAX_ATTEMPTS:
        job.status = JobStatus.DEAD
        job.finished_at = now
    else:
        job.status = JobStatus.QUEUED
        job.available_at = now + backoff(job.attempts)
    session.commit()


def requeue_stale(session: Session, now: datetime) -> int:
    """Jobs whose worker died mid-job go back to the queue (their attempt still counts)."""
    result = session.execute(
        update(TranscriptionJob)
        .where(
            TranscriptionJob.status == JobStatus.RUNNING,
            TranscriptionJob.claimed_at < now - LEASE,
        )
        .values(status=JobStatus.QUEUED, available_at=now, last_error="worker lost mid-job")
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def requeue_dead(session: Session, job_ids: Sequence[int], now: datetime) -> int:
    """An operator's retry of parked jobs, e.g. after fixing a model."""
    result = session.execute(
        update(TranscriptionJob)
        .where(TranscriptionJob.id.in_(job_ids), TranscriptionJob.status == JobStatus.DEAD)
        .values(status=JobStatus.QUEUED, available_at=now, attempts=0)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(TranscriptionJob.status, func.count()).group_by(TranscriptionJob.status)
    ).all()
    found = {JobStatus(status).value: int(n) for status, n in rows}
    return {s.value: found.get(s.value, 0) for s in JobStatus}

"""The transcription queue on SQLite and PostgreSQL: every job claimed once, failures parked."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from recording.db.engine import session_factory
from tests.factories import T0, add_recording
from transcribe.models import JobStatus, TranscriptionJob
from transcribe.queue import (
    LEASE,
    MAX_ATTEMPTS,
    claim,
    complete,
    counts,
    enqueue_missing,
    fail,
    requeue_stale,
)


def test_recordings_enqueue_themselves_once_per_model(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        for _ in range(3):
            add_recording(session)
        assert enqueue_missing(session, "base", T0) == 3
        assert enqueue_missing(session, "base", T0) == 0
        assert enqueue_missing(session, "small", T0) == 3  # another model keeps both
        assert counts(session)["queued"] == 6


def test_each_job_is_claimed_by_exactly_one_of_many_workers(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        for _ in range(20):
            add_recording(session)
        enqueue_missing(session, "base", T0)
    won: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        with sessions() as session:
            while (job := claim(session, name, T0)) is not None:
                with lock:
                    won.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(won) == sorted(set(won)) and len(won) == 20


def test_failures_back_off_then_park_with_their_reason(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        add_recording(session)
        add_recording(session)
        enqueue_missing(session, "base", T0)
        job = claim(session, "w", T0)
        assert job is not None
        fail(session, job, "model crashed", T0)
        assert job.status is JobStatus.QUEUED
        other = claim(session, "w", T0)  # the queue goes on with the next job
        assert other is not None and other.id != job.id
        assert claim(session, "w", T0) is None  # the failed one waits out its backoff
        later = T0 + timedelta(hours=2)
        for _ in range(MAX_ATTEMPTS):
            again = claim(session, "w", later)
            if again is None:
                break
            fail(session, again, "model crashed", later)
            later += timedelta(hours=2)
        parked = session.get(TranscriptionJob, job.id)
        assert parked is not None
        assert parked.status is JobStatus.DEAD and parked.last_error == "model crashed"
        complete(session, other, T0)
        assert counts(session) == {"queued": 0, "running": 0, "done": 1, "dead": 1}


def test_bad_audio_is_parked_at_once(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        add_recording(session)
        enqueue_missing(session, "base", T0)
        job = claim(session, "w", T0)
        assert job is not None
        fail(session, job, "call.ogg is empty", T0, permanent=True)
        assert job.status is JobStatus.DEAD and job.attempts == 1


def test_jobs_of_a_lost_worker_go_back_to_the_queue(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        add_recording(session)
        enqueue_missing(session, "base", T0)
        assert claim(session, "crashed-worker", T0) is not None
        assert requeue_stale(session, T0 + LEASE / 2) == 0
        assert requeue_stale(session, T0 + LEASE + timedelta(seconds=1)) == 1
        job = claim(session, "w2", T0 + LEASE + timedelta(seconds=1))
        assert job is not None and job.claimed_by == "w2" and job.attempts == 2
        statuses = session.scalars(select(TranscriptionJob.status)).all()
        assert statuses == [JobStatus.RUNNING]

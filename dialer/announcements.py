"""Carrier announcements in early media: kept when a call fails, transcribed, turned into evidence.

Carriers often say what is wrong with a number only in words, in early media
(183 with audio) before a generic final response: "您拨打的电话已停机" then
480, "the number you have dialed does not exist" then 404, or "your call has
been blocked" when our caller ID is flagged. So:

1. A dialer worker records the carrier's side from the first early-media
   packet (it is the debtor channel of the call's recording). When the call
   then fails, the B2BUA hands that channel over (`CallRecord.early_media`);
   `keep_early_media` cuts it to `MAX_EARLY_MEDIA_S` and moves it to
   `SPOOL/announcements/<call id>.wav`, and `finish_call` writes an
   `Announcement` job beside the call attempt. An answered call's early
   media is part of its recording and nothing is kept here.
2. The announcements process (`run_announcements`, one child of `dialguard
   up`) loads one transcribe engine, transcribes each pending job, and
   compares the text with the phrase book (dialer/number_status.py). A number
   status is stored as a `NumberStatusEvent` whose evidence is the
   transcript and the SIP code, so the number is not dialed again before its
   re-check interval; `caller_blocked` stays on the job, where caller-ID
   health (dialer/learned.py `recent_outcomes`) counts it like a 403.
3. The audio is deleted as soon as its job is done or failed: it is not a
   call recording, and nothing needs it once its words are stored.

The engine, the session factory and the clock come in as parameters, so the
same loop runs under the supervisor and in tests.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import CallRecord
from dialer.errors import DialerError
from dialer.learned import add_status_event
from dialer.models import Announcement
from dialer.number_status import CALLER_BLOCKED, NumberStatus, PhraseBook, phrase_book
from recording.db.engine import as_utc
from recording.db.heartbeats import run_with_heartbeat

__all__ = [
    "COMPONENT",
    "MAX_EARLY_MEDIA_S",
    "NOTHING",
    "AnnouncementError",
    "JobState",
    "Recogniser",
    "announcement_job",
    "announcements_dir",
    "keep_early_media",
    "load_phrase_book",
    "run_announcements",
]

COMPONENT = "announcements"
log = logging.getLogger(__name__)

#: Announcements repeat; the first half-minute holds every one we know, twice over.
MAX_EARLY_MEDIA_S = 30.0
#: Quieter than this (RMS of full scale) is no announcement: 183 with SDP but no audio.
SILENT_RMS = 0.003
#: A job left `working` this long was abandoned by a stopped process.
STALE_AFTER = timedelta(minutes=10)
#: An audio file with no job waiting for it is deleted once it is this old.
ORPHAN_AFTER = timedelta(hours=1)
#: The result of a job whose transcript matched no phrase.
NOTHING = "none"


class AnnouncementError(DialerError):
    """The phrase list cannot be used."""


class JobState(StrEnum):
    PENDING = "pending"
    WORKING = "working"
    DONE = "done"
    FAILED = "failed"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def announcements_dir(spool: Path) -> Path:
    return spool / "announcements"


def load_phrase_book(path: Path | None) -> PhraseBook:
    """The shipped phrase lists, or a YAML file's lists in place of the ones it names."""
    if path is None:
        return PhraseBook()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return phrase_book(data)
    except OSError as exc:
        raise AnnouncementError(
            f"phrase list {path} cannot be read ({exc.strerror or exc})",
            hint="check DIALGUARD_ANNOUNCEMENT_PHRASES",
        ) from None
    except (yaml.YAMLError, ValueError) as exc:
        raise AnnouncementError(
            f"phrase list {path}: {str(exc).splitlines()[0]}",
            hint="a YAML mapping of status (nonexistent, suspended, ..., caller_blocked) "
            "to a list of phrases",
        ) from None


# --- in the dialer worker: keep the early media of a failed call ------------------------


def _write_head(src: Path, dest: Path, max_s: float) -> bool:
    """Copy at most `max_s` of a 16-bit mono WAV; False if it holds no sound."""
    with wave.open(str(src), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise wave.Error(f"{src.name}: expected 16-bit mono PCM")
        rate = w.getframerate()
        frames = w.readframes(min(w.getnframes(), int(max_s * rate)))
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    if pcm.size == 0 or float(np.sqrt(np.mean(pcm**2))) < SILENT_RMS:
        return False
    part = dest.with_suffix(".part")
    with wave.open(str(part), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    part.replace(dest)  # the recogniser never sees half a file
    return True


def keep_early_media(
    record: CallRecord, directory: Path, max_s: float = MAX_EARLY_MEDIA_S
) -> Path | None:
    """Move a failed call's early media into `directory`, cut to `max_s`; None if none is kept.

    The source file is gone afterwards in every case. Silence (a 183 with
    SDP and no audio) is not kept. A file that is not readable WAV is kept
    as it is, so its job fails with the reason where someone can see it.
    """
    src = record.early_media
    if src is None:
        return None
    extra = {"call_id": record.call_id}
    try:
        if record.answered or record.caller_id is None:
            return None
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        dest = directory.resolve() / f"{record.call_id}.wav"
        try:
            if not _write_head(src, dest, max_s):
                log.info("early media was silent: no announcement", extra=extra)
                return None
        except (wave.Error, EOFError):
            os.replace(src, dest)
        return dest
    except OSError as exc:
        log.warning("early media not kept: %s", exc, extra=extra)
        return None
    finally:
        src.unlink(missing_ok=True)


def announcement_job(
    record: CallRecord, number_key: str, audio: Path, now: datetime
) -> Announcement:
    """The job row for a kept announcement, added in the same transaction as the attempt."""
    return Announcement(
        call_id=record.call_id,
        number_key=number_key,
        number_masked=record.number,
        caller_id=record.caller_id or "",
        sip_status=record.sip_status,
        sip_reason=record.sip_reason[:200],
        audio_path=str(audio),
        created_at=now,
        state=JobState.PENDING.value,
    )


# --- in the announcements process: recognise ----------------------------------------------


@dataclass
class Recogniser:
    """One transcribe engine and the phrase book, working the announcement jobs."""

    sessions: sessionmaker[Session]
    model: Any  # a loaded transcribe engine (transcribe.engine.load_engine)
    model_name: str
    directory: Path  # SPOOL/announcements, swept for files no job waits for
    phrases: PhraseBook = field(default_factory=PhraseBook)
    language: str | None = None  # None: detected per announcement (multilingual models)
    clock: Callable[[], datetime] = _utcnow
    _swept: float = field(default=0.0, repr=False)

    def work_once(self, stop: threading.Event | None = None, batch: int = 10) -> str:
        """Requeue abandoned jobs, then work up to `batch`; returns the heartbeat's status."""
        with self.sessions() as session:
            _requeue_stale(session, self.clock())
        done = 0
        while done < batch and not (stop is not None and stop.is_set()):
            job_id = self._claim()
            if job_id is None:
                break
            self.process(job_id)
            done += 1
        if time.monotonic() - self._swept > 600:
            self._swept = time.monotonic()
            self.sweep()
        with self.sessions() as session:
            pending = session.scalar(
                select(Announcement.id).where(Announcement.state == JobState.PENDING.value).limit(1)
            )
        return f"model {self.model_name}; {'jobs waiting' if pending else 'idle'}"

    def _claim(self) -> int | None:
        now = self.clock()
        with self.sessions() as session:
            for job_id in session.scalars(
                select(Announcement.id)
                .where(Announcement.state == JobState.PENDING.value)
                .order_by(Announcement.id)
                .limit(5)
            ).all():
                taken = session.execute(
                    update(Announcement)
                    .where(Announcement.id == job_id, Announcement.state == JobState.PENDING.value)
                    .values(state=JobState.WORKING.value, claimed_at=now)
                )
                session.commit()
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return job_id
        return None

    def process(self, job_id: int) -> None:
        """Transcribe one claimed job; it ends done or failed with a reason, its audio deleted."""
        from transcribe.errors import AudioError
        from transcribe.transcriber import transcribe_recording

        with self.sessions() as session:
            job = session.get(Announcement, job_id)
            if job is None:
                return
            audio, call_id = Path(job.audio_path), job.call_id
        extra = {"call_id": call_id, "job": job_id}
        try:
            transcript = transcribe_recording(self.model, self.model_name, audio, self.language)
        except AudioError as exc:
            self._fail(job_id, f"{exc} ({exc.hint})", audio)
            log.error("announcement cannot be transcribed: %s", exc, extra=extra)
            return
        except Exception as exc:  # the engine itself; the next job may well work
            self._fail(job_id, f"{type(exc).__name__}: {exc}", audio)
            log.exception("transcribing an announcement failed", extra=extra)
            return
        text = " ".join(s.text.strip() for s in transcript.segments if s.text.strip())
        verdict = self.phrases.verdict(text)
        with self.sessions() as session:
            job = session.get(Announcement, job_id)
            if job is None:
                return
            job.state, job.finished_at = JobState.DONE.value, self.clock()
            job.transcript, job.language = text[:1000], transcript.language[:8] or None
            job.result = verdict or NOTHING
            if isinstance(verdict, NumberStatus):
                add_status_event(
                    session,
                    job.number_key,
                    verdict,
                    as_utc(job.created_at),  # learned when the call ended, not when heard
                    job.call_id,
                    f'SIP {job.sip_status} after announcement "{text[:240]}"',
                )
            session.commit()
            caller_id, masked = job.caller_id, job.number_masked
        audio.unlink(missing_ok=True)
        log.info(
            "announcement recognised: %s",
            verdict or NOTHING,
            extra={**extra, "number": masked, "language": transcript.language},
        )
        if verdict == CALLER_BLOCKED:
            log.warning(
                "the carrier says calls from caller ID %s are blocked; a run of these "
                "retires it from the rotation",
                caller_id,
                extra={**extra, "event": "caller_id_blocked_announcement"},
            )

    def _fail(self, job_id: int, reason: str, audio: Path) -> None:
        with self.sessions() as session:
            job = session.get(Announcement, job_id)
            if job is not None:
                job.state, job.finished_at = JobState.FAILED.value, self.clock()
                job.detail = reason[:300]
                session.commit()
        audio.unlink(missing_ok=True)

    def sweep(self) -> int:
        """Delete announcement audio that no job waits for (a booking that failed midway)."""
        cutoff = time.time() - ORPHAN_AFTER.total_seconds()
        removed = 0
        for path in self.directory.glob("*.wav"):
            try:
                if path.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            with self.sessions() as session:
                waiting = session.scalar(
                    select(Announcement.id).where(
                        Announcement.audio_path == str(path),
                        Announcement.state.in_([JobState.PENDING.value, JobState.WORKING.value]),
                    )
                )
            if waiting is None:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.warning("deleted %d announcement file(s) that no job was waiting for", removed)
        return removed


def _requeue_stale(session: Session, now: datetime) -> None:
    """A job abandoned mid-transcription is tried once more, then failed.

    Once more, not forever: a file that kills the engine would otherwise
    take the process down at every restart.
    """
    cutoff = now - STALE_AFTER
    stale = session.scalars(
        select(Announcement).where(
            Announcement.state == JobState.WORKING.value, Announcement.claimed_at < cutoff
        )
    ).all()
    for job in stale:
        if job.detail is None:
            job.state, job.detail = JobState.PENDING.value, "interrupted once; retried"
        else:
            job.state, job.finished_at = JobState.FAILED.value, now
            job.detail = "interrupted twice while being transcribed; given up"
            Path(job.audio_path).unlink(missing_ok=True)
    if stale:
        session.commit()


def run_announcements(recogniser: Recogniser, stop: threading.Event, interval: float = 1.0) -> None:
    """Work announcement jobs until `stop`, beating as the `announcements` component."""
    recogniser.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_with_heartbeat(
        COMPONENT,
        recogniser.sessions,
        stop,
        lambda: recogniser.work_once(stop),
        interval=interval,
    )

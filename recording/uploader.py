"""The recording uploader process.

It owns the local spool: finished recordings wait there, encrypted, until
both stored copies are verified, however long storage is away. Each tick
uploads what it can; once an hour it also runs the end-of-retention job,
and after it the jobs the caller adds (`dialguard up` adds the deletion of
ended contracts' client data, which `recording` knows nothing of).

Its heartbeat detail is measured at every beat, not copied from the last
finished tick (a tick stuck in a request to frozen storage never finishes):
how many recordings wait and how old the oldest is, and an ALERT when a
request has hung or the backlog has stopped moving
(`recording.upload_health` decides, from what `measure` and `Progress` saw).

When storage refuses (unreachable, read-only, full, our clock off) calls go
on and recordings stay in the spool; the heartbeat detail turns into an
ALERT with the plain reason, an ALERT line is logged when the reason first
appears (and every few minutes while it lasts), and a line when storage
accepts uploads again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recording.db.engine import as_utc
from recording.db.heartbeats import alert_detail, run_with_heartbeat
from recording.leases import lease_owner
from recording.lifecycle import Audit, Forget, expire
from recording.models import Recording, RecordingStatus
from recording.storage import make_client
from recording.store import Copy, UploadReport, upload_pending
from recording.upload_health import Activity, Backlog, alarms, stuck, waiting_line

COMPONENT = "uploader"
log = logging.getLogger(__name__)

#: While storage keeps refusing for the same reason, the ALERT is logged again this often.
REPEAT_ALERT_S = 300.0


def backlog(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        count = session.scalar(
            select(func.count()).where(Recording.status == RecordingStatus.SPOOLED)
        )
    return int(count or 0)


def measure(sessions: sessionmaker[Session], now: datetime) -> Backlog:
    """What waits in the spool now: the count, and the oldest one's age and lease holder."""
    with sessions() as session:
        count = session.scalar(
            select(func.count()).where(Recording.status == RecordingStatus.SPOOLED)
        )
        oldest = session.execute(
            select(Recording.id, Recording.created_at, Recording.lease_owner, Recording.lease_until)
            .where(Recording.status == RecordingStatus.SPOOLED)
            .order_by(Recording.created_at)
            .limit(1)
        ).first()
    if not count or oldest is None:
        return Backlog(0)
    recording_id, created_at, holder, until = oldest
    held = holder if until is not None and as_utc(until) >= now else None
    age = max(0.0, (now - as_utc(created_at)).total_seconds())
    return Backlog(int(count), age, recording_id, held)


class Progress:
    """What the uploading thread is doing, for the heartbeat thread to read at every beat."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._busy: str | None = None
        self._busy_since = 0.0
        self._stored_at = monotonic()
        self._problems: dict[str, str] = {}
        self._errors: list[str] = []
        self._said_stuck: str | None = None

    def watch(self, what: str | None) -> None:
        """`upload_pending`'s watch: which request runs now."""
        with self._lock:
            self._busy, self._busy_since = what, self.monotonic()

    def finished(self, report: UploadReport) -> None:
        with self._lock:
            if report.stored:
                self._stored_at = self.monotonic()
            self._problems = dict(report.problems)
            self._errors = list(report.errors)

    def activity(self) -> Activity:
        with self._lock:
            now = self.monotonic()
            return Activity(
                busy=self._busy,
                busy_s=now - self._busy_since if self._busy else 0.0,
                idle_s=now - self._stored_at,
                problems=dict(self._problems),
            )

    def detail(self, backlog: Backlog) -> str:
        """The heartbeat detail; logs an ALERT once when uploads get stuck: a request that
        hangs, or a backlog that does not move (whichever comes first; a refusal is
        `StorageAlarm`'s to log)."""
        activity = self.activity()
        reasons = alarms(backlog, activity)
        line = waiting_line(backlog)
        found = stuck(backlog, activity)
        cause = found[0] if found else None
        with self._lock:
            news, self._said_stuck = cause is not None and cause != self._said_stuck, cause
            errors = list(self._errors)
        if found and news:
            log.error(
                "ALERT upload stuck: %s (%s)", found[1], line, extra={"event": "upload_stuck"}
            )
        if reasons:
            return alert_detail("; ".join(reasons), line)
        return f"{line}; last error: {errors[-1]}" if errors else line


class StorageAlarm:
    """Turns each round's storage problem (or its absence) into log lines worth reading.

    Not one line per two-second tick: one when a problem starts or changes,
    a reminder every REPEAT_ALERT_S while it lasts, one when it is over.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.problem: str | None = None
        self._said_at = 0.0

    def update(self, problem: str | None, waiting: int) -> None:
        now = self.monotonic()
        if problem is None:
            if self.problem is not None:
                log.warning(
                    "storage accepts uploads again", extra={"waiting": waiting, "was": self.problem}
                )
            self.problem = None
            return
        if problem != self.problem or now - self._said_at >= REPEAT_ALERT_S:
            log.error(
                "ALERT storage refuses recordings: %s (%d waiting in the spool, none lost)",
                problem,
                waiting,
                extra={"event": "storage_refused", "waiting": waiting},
            )
            self._said_at = now
        self.problem = problem


def upload_tick(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    alarm: StorageAlarm | None = None,
    progress: Progress | None = None,
    owner: str | None = None,
) -> str:
    """One round of uploads; returns the health detail measured after it (an ALERT while
    storage refuses, naming every bucket that does)."""
    progress = progress or Progress()
    report: UploadReport = upload_pending(
        sessions, spool, copies, clock(), owner=owner, watch=progress.watch
    )
    progress.finished(report)
    for error in report.errors:
        log.warning("upload failed; will retry", extra={"error": error})
    measured = measure(sessions, clock())
    if alarm is not None:
        alarm.update(report.problem, measured.waiting)
    return progress.detail(measured)


def run_uploader(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    audit: Audit,
    stop: threading.Event,
    forget: Forget,
    hourly: Sequence[Callable[[datetime], object]] = (),
    expire_every: float = 3600.0,
) -> None:
    """Upload what waits, and once an hour end the recordings whose retention is over.

    `forget` goes to `expire`; each of `hourly` runs after it, on its own: one
    that fails is logged and tried again an hour later, and neither stops
    uploads nor the others.
    """
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    last_expiry = [0.0]
    alarm = StorageAlarm()
    progress = Progress()
    owner = lease_owner(COMPONENT)

    def tick() -> str:
        status = upload_tick(sessions, spool, copies, alarm=alarm, progress=progress, owner=owner)
        if time.monotonic() - last_expiry[0] >= expire_every:
            last_expiry[0] = time.monotonic()
            ended = expire(sessions, copies, datetime.now(UTC), audit, forget)
            if ended:
                log.info("retention ended", extra={"deleted": len(ended)})
            for job in hourly:
                try:
                    job(datetime.now(UTC))
                except Exception:
                    log.exception("retention job failed; will retry", extra={"job": _name(job)})
        return status

    def describe(last: str) -> str:
        # Measured at every beat: a tick stuck in a request must not leave "0 waiting" up.
        detail = progress.detail(measure(sessions, datetime.now(UTC)))
        return f"{detail}; {last}" if last.startswith("last tick failed") else detail

    run_with_heartbeat(COMPONENT, sessions, stop, tick, describe=describe)


def _name(job: Callable[..., object]) -> str:
    return str(getattr(job, "__name__", type(job).__name__))


@dataclass(frozen=True)
class Delivery:
    """Where one recording is after `deliver`: stored twice, or still spooled and why."""

    stored: bool
    copies: tuple[str, ...]  # the copies verified so far
    reason: str | None = None  # why it still waits, in one plain sentence


def deliver(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    recording_id: str,
    timeout: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Delivery:
    """Store one recording now, returning within `timeout` seconds; others are not touched.

    What `dialguard recording store` does after spooling its recording. It
    takes the recording's lease like any uploader; if the running uploader
    holds it, it waits for that one to finish instead. Requests get timeouts
    no longer than the time left and are not retried by the HTTP client; and
    should one still hang, the answer comes at `timeout` all the same, from
    what the database says then: the hung request is abandoned with the
    process, which is safe (its lease dies with the process; its PUT, if
    storage completes it, is adopted by the next uploader, see
    `recording.store._put_copy`). Nothing is lost: what is not stored stays
    in the spool for the uploader.
    """
    outcome: list[Delivery] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            _deliver(sessions, spool, copies, recording_id, timeout, clock)
        ),
        name="deliver",
        daemon=True,
    )
    worker.start()
    worker.join(timeout + 0.5)
    if outcome:
        return outcome[0]
    return _where(sessions, copies, recording_id, f"storage did not answer within {timeout:g} s")


def _where(
    sessions: sessionmaker[Session], copies: tuple[Copy, Copy], recording_id: str, reason: str
) -> Delivery:
    with sessions() as session:
        row = session.get(Recording, recording_id)
    if row is None:
        return Delivery(False, (), "the recording is gone from the database")
    done = tuple(c.name for c in copies if getattr(row, f"{c.name}_sha256"))
    if row.status is not RecordingStatus.SPOOLED:
        return Delivery(True, done)
    return Delivery(False, done, reason)


def _deliver(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    recording_id: str,
    timeout: float,
    clock: Callable[[], datetime],
) -> Delivery:
    owner = lease_owner("store")
    deadline = time.monotonic() + timeout
    reason = "storage did not answer in time"
    while (left := deadline - time.monotonic()) > 0:
        bounded = tuple(
            Copy(
                c.name,
                c.target,
                make_client(c.target, timeout=min(10.0, max(1.0, left)), retries=0),
            )
            for c in copies
        )
        report = upload_pending(
            sessions, spool, (bounded[0], bounded[1]), clock(), owner=owner, only=[recording_id]
        )
        where = _where(sessions, copies, recording_id, reason)
        if where.stored or where.reason == "the recording is gone from the database":
            return where
        with sessions() as session:
            row = session.get(Recording, recording_id)
        if report.held and row is not None:
            reason = f"{row.lease_owner or 'another uploader'} is storing it"
        elif row is not None:
            reason = row.last_error or report.problem or reason
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return _where(sessions, copies, recording_id, reason)

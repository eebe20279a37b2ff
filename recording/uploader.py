"""The recording uploader process.

It owns the local spool: finished recordings wait there, encrypted, until
both stored copies are verified, however long storage is away. Each tick
uploads what it can and reports the backlog in its heartbeat; once an hour
it also runs the end-of-retention job.

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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recording.db.heartbeats import alert_detail, run_with_heartbeat
from recording.lifecycle import Audit, expire
from recording.models import Recording, RecordingStatus
from recording.store import Copy, UploadReport, upload_pending

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
) -> str:
    """One round of uploads; returns the heartbeat detail (an ALERT while storage refuses)."""
    report: UploadReport = upload_pending(sessions, spool, copies, clock())
    for error in report.errors:
        log.warning("upload failed; will retry", extra={"error": error})
    waiting = backlog(sessions)
    if alarm is not None:
        alarm.update(report.problem, waiting)
    detail = f"{waiting} waiting in spool"
    if report.problem is not None:
        return alert_detail(report.problem, detail)
    return f"{detail}; last error: {report.errors[-1]}" if report.errors else detail


def run_uploader(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    audit: Audit,
    stop: threading.Event,
    expire_every: float = 3600.0,
) -> None:
    """Upload what waits, and once an hour end the recordings whose retention is over."""
    spool.mkdir(parents=True, exist_ok=True)
    last_expiry = [0.0]
    alarm = StorageAlarm()

    def tick() -> str:
        status = upload_tick(sessions, spool, copies, alarm=alarm)
        if time.monotonic() - last_expiry[0] >= expire_every:
            last_expiry[0] = time.monotonic()
            ended = expire(sessions, copies, datetime.now(UTC), audit)
            if ended:
                log.info("retention ended", extra={"deleted": len(ended)})
        return status

    run_with_heartbeat(COMPONENT, sessions, stop, tick)

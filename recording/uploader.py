"""The recording uploader process.

It owns the local spool: finished recordings wait there, encrypted, until
both stored copies are verified, however long storage is away. Each tick
uploads what it can and reports the backlog in its heartbeat; once an hour
it also runs the end-of-retention job.
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

from recording.heartbeat import run_with_heartbeat
from recording.lifecycle import Audit, expire
from recording.models import Recording, RecordingStatus
from recording.store import Copy, upload_pending

COMPONENT = "uploader"
log = logging.getLogger(__name__)


def backlog(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        count = session.scalar(
            select(func.count()).where(Recording.status == RecordingStatus.SPOOLED)
        )
    return int(count or 0)


def upload_tick(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    report = upload_pending(sessions, spool, copies, clock())
    for error in report.errors:
        log.warning("upload failed; will retry", extra={"error": error})
    waiting = backlog(sessions)
    detail = f"{waiting} waiting in spool"
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

    def tick() -> str:
        status = upload_tick(sessions, spool, copies)
        if time.monotonic() - last_expiry[0] >= expire_every:
            last_expiry[0] = time.monotonic()
            ended = expire(sessions, copies, datetime.now(UTC), audit)
            if ended:
                log.info("retention ended", extra={"deleted": len(ended)})
        return status

    run_with_heartbeat(COMPONENT, sessions, stop, tick)

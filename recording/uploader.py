"""The recording uploader process.

It owns the local spool: finished recordings wait there, encrypted, until
both stored copies are verified, however long storage is away. Each tick
uploads what it can and reports the backlog in its heartbeat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recording.heartbeat import run_with_heartbeat
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
    stop: threading.Event,
) -> None:
    spool.mkdir(parents=True, exist_ok=True)
    run_with_heartbeat(COMPONENT, sessions, stop, lambda: upload_tick(sessions, spool, copies))

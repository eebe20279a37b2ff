"""The recording uploader process.

It owns the local spool: finished recordings wait there until both stored
copies are verified. This foundation version keeps the spool ready and reports
its backlog in its heartbeat; encryption and upload build on it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recording.heartbeat import run_with_heartbeat

COMPONENT = "uploader"


def spool_backlog(spool: Path) -> int:
    """Recordings waiting in the spool (finished files, not ones still being written)."""
    return sum(1 for path in spool.iterdir() if path.is_file() and not path.name.endswith(".part"))


def run_uploader(sessions: sessionmaker[Session], spool: Path, stop: threading.Event) -> None:
    spool.mkdir(parents=True, exist_ok=True)
    run_with_heartbeat(
        COMPONENT, sessions, stop, lambda: f"{spool_backlog(spool)} waiting in spool"
    )

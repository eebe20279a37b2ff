"""Pauses of a call's recording into the audit log, each exactly once.

The dialer mutes a recording from the agent's keypad (`*7`/`*8`) or on a
command queued by the API, and writes a `pause_events` row for each pause
and resume; it cannot write the audit log itself (nothing imports `api`).
This follower turns those rows into audit entries. A pause asked for through
the API was audited by the route already, with the person who asked, so its
event is only stamped here; a keypad pause is audited with the agent.

The stamp (`audited_at`) and the audit entry land in one commit, and a row
is claimed with a conditional update first, so a crash, a restart or a
second follower never writes an entry twice or loses one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.audit.chain import record
from dialer.models import PauseEvent

log = logging.getLogger(__name__)

ACTIONS = {"pause": "recording-pause", "resume": "recording-resume"}


def audit_pause_events(
    sessions: sessionmaker[Session], clock: Callable[[], datetime], batch: int = 200
) -> int:
    """Audit the pause events not audited yet, oldest first; returns how many were taken."""
    with sessions() as session:
        waiting = session.scalars(
            select(PauseEvent.id)
            .where(PauseEvent.audited_at.is_(None))
            .order_by(PauseEvent.id)
            .limit(batch)
        ).all()
    taken = 0
    for event_id in waiting:
        with sessions() as session:
            taken += _audit_one(session, event_id, clock)
    return taken


def _audit_one(session: Session, event_id: int, clock: Callable[[], datetime]) -> int:
    for _ in range(5):
        now = clock()
        claimed = session.execute(
            update(PauseEvent)
            .where(PauseEvent.id == event_id, PauseEvent.audited_at.is_(None))
            .values(audited_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return 0  # another follower took it
        event = session.get(PauseEvent, event_id)
        assert event is not None
        if event.source == "api":  # the route wrote its entry when it was asked
            session.commit()
            return 1
        try:
            record(
                session,
                event.actor,
                ACTIONS.get(event.action, f"recording-{event.action}"),
                event.call_id,
                now,
                detail={"source": event.source, "at_s": event.offset_s},
                attempts=1,
            )
        except RuntimeError:  # the chain moved on under us; the claim was rolled back too
            continue
        return 1
    log.warning("audit log too contended; pause event %d waits for the next round", event_id)
    return 0


def follow_pause_events(
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime],
    stop: threading.Event,
    interval_s: float = 1.0,
) -> None:
    """Audit pause events as they come, until `stop` is set."""
    while not stop.is_set():
        try:
            audit_pause_events(sessions, clock)
        except Exception:
            log.exception("auditing pause events failed; trying again")
        stop.wait(interval_s)

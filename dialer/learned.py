"""What placed calls taught, as stored: number status events and caller-ID outcomes.

The database side of dialer/number_status.py and dialer/caller_ids.py, in
one place for the two processes that learn: a dialer worker from a call's
SIP final response, the announcements process from the carrier's words.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.caller_ids import Outcome
from dialer.models import Announcement, CallAttempt, NumberStatusEvent
from dialer.number_status import CALLER_BLOCKED, NumberStatus
from recording.db.engine import as_utc

EVIDENCE_CHARS = 300  # NumberStatusEvent.evidence


def add_status_event(
    session: Session,
    number_key: str,
    status: NumberStatus,
    at: datetime,
    call_id: str,
    evidence: str,
) -> None:
    """Append one status change with its evidence; the latest `at` (then id) is the status.

    Append-only: a status that keeps a debtor's number off the dial list for
    weeks must be explainable later, so no event is ever overwritten.
    """
    session.add(
        NumberStatusEvent(
            number_key=number_key,
            status=status.value,
            at=at,
            call_id=call_id,
            evidence=evidence[:EVIDENCE_CHARS],
        )
    )


def recent_outcomes(session: Session, caller_id: str, limit: int) -> list[Outcome]:
    """A caller ID's last `limit` placed calls, newest first, with what their announcement said.

    An announcement still waiting to be transcribed counts as not blocked:
    a caller ID is retired on evidence, never on a guess.
    """
    rows = session.execute(
        select(CallAttempt.started_at, CallAttempt.sip_status, Announcement.result)
        .outerjoin(Announcement, Announcement.call_id == CallAttempt.call_id)
        .where(CallAttempt.caller_id == caller_id, CallAttempt.placed.is_(True))
        .order_by(CallAttempt.started_at.desc(), CallAttempt.id.desc())
        .limit(limit)
    ).all()
    return [Outcome(as_utc(at), status, result == CALLER_BLOCKED) for at, status, result in rows]

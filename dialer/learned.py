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
from dialer.calls import CallRecord, Ended
from dialer.models import Announcement, CallAttempt, NumberStatusEvent
from dialer.number_status import CALLER_BLOCKED, NumberStatus, status_from_sip
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


def latest_status(session: Session, key: str) -> NumberStatusEvent | None:
    return session.scalar(
        select(NumberStatusEvent)
        .where(NumberStatusEvent.number_key == key)
        .order_by(NumberStatusEvent.at.desc(), NumberStatusEvent.id.desc())
        .limit(1)
    )


def learn_status(session: Session, key: str, record: CallRecord, now: datetime) -> None:
    """Store what a placed call showed about its number (append-only: the history is evidence).

    Only calls that reached the carrier teach anything: our own refusals
    (policy, do-not-call, a malformed number) say nothing about the number.
    """
    if record.caller_id is None:
        return
    status = status_from_sip(
        record.sip_status,
        record.sip_reason,
        answered=record.answered,
        talk_s=record.duration_s,
        agent_cancelled=record.ended_by is Ended.AGENT and not record.answered,
    )
    if status is None:
        return
    evidence = f"SIP {record.sip_status} {record.sip_reason}".strip()
    if record.answered:
        evidence = f"answered, {record.duration_s:.0f} s of talk"
    add_status_event(session, key, status, now, record.call_id, evidence)


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

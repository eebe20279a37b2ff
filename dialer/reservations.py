"""Calls in flight: the lock a decision holds, the reservation it books, and how each
reservation ends.

A decision and the booking of the call it allows are one transaction
(`dialer.decision.reserve_number`): under `lock_decision` it reads the history,
decides, and adds an `AttemptReservation`, so the next decision, taken by any
worker on any host, counts the call while it rings or talks. The database
gives the guarantee, never a lock inside one process:

- PostgreSQL: a transaction-level advisory lock per number, per debtor and per
  caller ID (`pg_advisory_xact_lock`), taken in one fixed order so that two
  decisions never wait on each other in a circle; released by the commit.
  Decisions about other numbers and debtors run side by side.
- SQLite: the decision runs in a write transaction (`BEGIN IMMEDIATE`), which
  holds the database's one writer lock from its first statement: decisions
  take turns, across every process that opens the file.

A reservation ends in exactly one `CallAttempt` with the same call id, in the
same commit that deletes it: when the call is booked (`dialer.booking`), when
a restarted worker stores what its killed predecessor left (salvage), or, for
a call no one will book, in `settle_abandoned`. Counted once, never twice, and
never dropped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from dialer.errors import DialerError
from dialer.models import AttemptReservation, CallAttempt, CallRequest, LiveCall

log = logging.getLogger(__name__)

#: A reservation this old whose call no worker carries is abandoned: its worker died
#: between the decision and the start of the call (a live call is written at its start).
ABANDONED_AFTER = timedelta(minutes=10)

ABANDONED_REASON = (
    "the dialer stopped before this call ended; booked at a restart as an unanswered "
    "attempt (its INVITE may have left)"
)


class DecisionUnavailable(DialerError):
    """The decision could not be taken (the database did not answer): the call is not placed."""


@dataclass(frozen=True)
class Booking:
    """Who a reservation is for: the call, its agent, the worker carrying it ("host/index")."""

    call_id: str
    agent: str
    worker: str
    request_id: int | None = None


def lock_id(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name; a collision only makes two wait."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_decision(session: Session, names: Iterable[str]) -> None:
    """Serialise the decisions that count the same calls; call first in a fresh session.

    `names` are what the decision counts ("number:<key>", "debtor:<id>",
    "caller-id:<number>"). The lock lasts until the session commits or rolls
    back.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite opens its own transaction only before a write; this one takes the
        # writer lock now, so the reads below see every earlier decision's booking.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        for key in sorted({lock_id(name) for name in names}):
            connection.execute(select(func.pg_advisory_xact_lock(key)))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise DialerError(
            f"no decision lock for the {dialect} database",
            hint="use SQLite or PostgreSQL (DIALGUARD_DATABASE_URL)",
        )


def reserve(
    session: Session,
    booking: Booking,
    number_key: str,
    number_masked: str,
    debtor_id: str | None,
    at: datetime,
) -> None:
    """Book the allowed call as in flight, in the decision's transaction (the caller commits)."""
    session.add(
        AttemptReservation(
            call_id=booking.call_id,
            agent=booking.agent[:64],
            number_key=number_key,
            number_masked=number_masked[:32],
            debtor_id=debtor_id,
            reserved_at=at,
            worker=booking.worker[:100],
            request_id=booking.request_id,
        )
    )


def take(session: Session, call_id: str) -> AttemptReservation | None:
    """The call's reservation, deleted in the caller's transaction, which books its attempt."""
    found = session.get(AttemptReservation, call_id)
    if found is not None:
        session.execute(delete(AttemptReservation).where(AttemptReservation.call_id == call_id))
        session.expunge(found)
    return found


def in_flight_on(session: Session, caller_id: str) -> int:
    """Calls in flight presenting `caller_id`."""
    return int(
        session.scalar(select(func.count()).where(AttemptReservation.caller_id == caller_id)) or 0
    )


def settle_abandoned(
    sessions: sessionmaker[Session],
    now: datetime,
    worker: str | None = None,
    older_than: timedelta = ABANDONED_AFTER,
) -> int:
    """Book the reservations no call will book; returns how many.

    Those `worker` held (its predecessor was killed: call this at a worker's
    start, after salvage stored the calls that had audio), and anyone's older
    than `older_than` that no worker carries as a live call. Each becomes an
    unanswered placed attempt ended by Dialguard: the INVITE may have left, so
    it keeps counting as an attempt, never as a connected call; its
    click-to-call request is failed.
    """
    carried = select(LiveCall.call_id)
    stale = (AttemptReservation.reserved_at < now - older_than) & AttemptReservation.call_id.not_in(
        carried
    )
    scope = stale if worker is None else (AttemptReservation.worker == worker) | stale
    settled = 0
    with sessions() as session:
        for row in session.scalars(select(AttemptReservation).where(scope)).all():
            if session.scalar(select(CallAttempt.id).where(CallAttempt.call_id == row.call_id)):
                session.delete(row)  # booked already (the delete was lost): keep that one
                continue
            session.add(
                CallAttempt(
                    call_id=row.call_id,
                    sip_call_id="",
                    agent=row.agent,
                    number_key=row.number_key,
                    number_masked=row.number_masked,
                    debtor_id=row.debtor_id,
                    started_at=row.reserved_at,
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    ring_s=0.0,
                    sip_status=0,
                    sip_reason=ABANDONED_REASON,
                    ended_by="dialguard",
                    caller_id=row.caller_id,
                )
            )
            if row.request_id is not None:
                request = session.get(CallRequest, row.request_id)
                if request is not None and request.status in ("queued", "claimed"):
                    request.status, request.finished_at = "failed", now
                    request.call_id = row.call_id
                    request.detail = "the dialer stopped before the call ended"
            session.delete(row)
            settled += 1
        session.commit()
    if settled:
        log.warning("settled %d call(s) in flight that a stopped dialer left", settled)
    return settled

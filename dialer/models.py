"""What the dialer keeps: agents' SIP credentials (hashed) and every call attempt.

A phone number is personal data: attempts hold a keyed hash of the E.164
number, enough to count attempts per number for the call policy, and a
masked form for people to read; never the number itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recording.db.engine import Base


class SipAccount(Base):
    """An agent's softphone login: HA1 digests only (RFC 2617/8760), never the password."""

    __tablename__ = "sip_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    realm: Mapped[str] = mapped_column(String(64))
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallAttempt(Base):
    """One authenticated call attempt: refused before the trunk, or placed and ended."""

    __tablename__ = "call_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), unique=True)
    sip_call_id: Mapped[str] = mapped_column(String(200))
    agent: Mapped[str] = mapped_column(String(64), index=True)
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    debtor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    placed: Mapped[bool] = mapped_column(Boolean)  # it reached the trunk
    answered: Mapped[bool] = mapped_column(Boolean)
    duration_s: Mapped[float] = mapped_column(Float)  # talk time
    ring_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    sip_status: Mapped[int] = mapped_column(Integer)
    # Whole, never cut: a refusal's reason ends with the next allowed time (migration 0023).
    sip_reason: Mapped[str] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(String(40))  # the policy rule that refused it
    ended_by: Mapped[str] = mapped_column(String(16))
    caller_id: Mapped[str | None] = mapped_column(String(32))
    recording_id: Mapped[str | None] = mapped_column(String(32))
    # Stretches either party held the call, [[start, end], ...] seconds into the recording.
    holds_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


class AttemptReservation(Base):
    """A call decided and booked but not ended: the call policy counts it like an attempt.

    Written in the same transaction as the decision that allowed the call, under
    the decision's lock (dialer/reservations.py), so the next decision, on any
    worker or host, sees it. When the call ends (dialer/booking.py), the row is
    replaced by the call's `CallAttempt` in one commit: the call is counted
    once, never twice and never not at all. A worker killed before it could
    book its calls has them settled at its restart (or, failing that, by any
    worker's start once they are old and have no live call).
    """

    __tablename__ = "attempt_reservations"

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64))
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    debtor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    worker: Mapped[str] = mapped_column(String(100), index=True)  # "host/index" that holds it
    request_id: Mapped[int | None] = mapped_column(Integer)  # the click-to-call, if one
    caller_id: Mapped[str | None] = mapped_column(String(32), index=True)  # once chosen


class DncEntry(Base):
    """A number not to be called: for everyone, for one client's debts, or for one debtor."""

    __tablename__ = "dnc_entries"
    __table_args__ = (UniqueConstraint("number_key", "scope", "scope_id", name="uq_dnc_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(8))  # global | client | debtor
    scope_id: Mapped[str] = mapped_column(String(64))  # "" for global
    reason: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NumberStatusEvent(Base):
    """A number's status as one call showed it, with the evidence; the latest one counts."""

    __tablename__ = "number_status_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    call_id: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(String(300))  # e.g. "SIP 404 Not Found"


class SipRegistration(Base):
    """Where an agent's softphone can be reached: needed to ring it for click-to-call."""

    __tablename__ = "sip_registrations"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact: Mapped[str] = mapped_column(String(255))  # the softphone's Contact URI
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallRequest(Base):
    """A click-to-call: ring the agent's softphone, then dial the number; claimed by a worker."""

    __tablename__ = "call_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    number_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # the E.164 number, encrypted
    number_masked: Mapped[str] = mapped_column(String(32))
    debtor_id: Mapped[str | None] = mapped_column(String(64))
    # The debtor's facts the call policy needs, as the debtor record gave them when the
    # request was made (dialer/debtors/facts.py writes and reads them): the client (for
    # its do-not-call list), the debtor's time zone and agreed call-back windows.
    client_id: Mapped[str | None] = mapped_column(String(64))
    debtor_tz: Mapped[str | None] = mapped_column(String(64))
    callback_windows_json: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued|claimed|done|failed
    worker: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[str | None] = mapped_column(String(32))
    sip_status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)  # the call's rule and reason, whole
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Announcement(Base):
    """A failed call's early media, waiting to be heard: what the carrier said, and what it meant.

    A job for the announcements process; the audio file is deleted once the
    job is done or failed, the transcript stays as the evidence.
    """

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), unique=True)
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    caller_id: Mapped[str] = mapped_column(String(32), index=True)
    sip_status: Mapped[int] = mapped_column(Integer)
    sip_reason: Mapped[str] = mapped_column(String(200))
    audio_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending|working|done|failed
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    language: Mapped[str | None] = mapped_column(String(8))
    transcript: Mapped[str | None] = mapped_column(String(1000))
    result: Mapped[str | None] = mapped_column(String(16))  # a number status, caller_blocked, none
    detail: Mapped[str | None] = mapped_column(String(300))  # why a job failed


class LiveCall(Base):
    """A call a worker is carrying now: what the API checks before it queues a command.

    Written when the call starts and removed when it is booked; a restarted
    worker removes what its crashed predecessor left.
    """

    __tablename__ = "live_calls"

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    worker: Mapped[int] = mapped_column(Integer, index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)


class CallCommand(Base):
    """A command to a running call (pause or resume its recording), for its worker to apply."""

    __tablename__ = "call_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(8))  # pause | resume
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(8), index=True)  # queued | done | failed
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(String(200))


class PauseEvent(Base):
    """A recording paused or resumed, from the keypad or the API: awaiting its audit entry.

    The dialer cannot write the audit log (it lives in `api`); the API side
    turns each row into one entry and stamps `audited_at` in the same commit.
    """

    __tablename__ = "pause_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(8))  # pause | resume
    actor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # keypad | api
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offset_s: Mapped[float | None] = mapped_column(Float)  # seconds into the recording
    command_id: Mapped[int | None] = mapped_column(Integer)
    audited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

"""After the call: its recording encrypted into the spool and its attempt booked.

A finished call (`finish_call`) and a call a killed worker left on disk
(`store_leftover`, fed by dialer/sip/salvage.py) end the same way: the
recording spooled first, then one `CallAttempt` row, so a failure keeps the
WAV for the next start's salvage. The row replaces the call's reservation
(dialer/reservations.py) in the same commit, so the call policy counts the
call once, in flight and then ended, never twice; a call whose attempt was
booked already (settled as abandoned) has that row updated with its outcome.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from dialer.announcements import announcement_job, announcements_dir, keep_early_media
from dialer.calls import CallRecord, note_path
from dialer.click_to_call import close_request
from dialer.debtors.facts import DebtorFacts, debtor_facts
from dialer.learned import learn_status
from dialer.live_calls import call_ended
from dialer.models import CallAttempt
from dialer.numbers import number_key
from dialer.reservations import take
from dialer.sip.salvage import Leftover
from dialer.site import CallSite
from recording.models import Recording
from recording.storage_rules import retention_for
from recording.store import CallInfo, spool_call

log = logging.getLogger(__name__)


def store_recording(
    site: CallSite,
    wav: Path,
    call_id: str,
    agent: str,
    started_at: datetime,
    pauses: tuple[tuple[float, float], ...] = (),
    debtor: DebtorFacts | None = None,
) -> str:
    """Encode, encrypt and spool a call's stereo WAV; the uploader takes it from there."""
    info = CallInfo(
        call_id=call_id,
        agent=agent,
        recorded_at=started_at,
        pauses=pauses,
        debtor_id=debtor.debtor_id if debtor else None,
        client_id=debtor.client_id if debtor else None,
    )
    days = retention_for(info.client_id, site.retention_days, site.client_retention)
    row = spool_call(site.sessions, site.spool, site.keys, wav, info, days, site.clock())
    return row.id


def finish_call(site: CallSite, record: CallRecord) -> None:
    """Spool the recording, then book the attempt; a failure keeps the WAV for salvage."""
    started = datetime.fromtimestamp(record.started_at, UTC)
    key = number_key(site.number_secret, record.e164)
    with site.sessions() as session:
        debtor = debtor_facts(session=session, request_id=record.request_id, number_key=key)
    recording_id = None
    if record.recording is not None:
        answered = datetime.fromtimestamp(record.answered_at or record.started_at, UTC)
        recording_id = store_recording(
            site, record.recording, record.call_id, record.agent, answered, record.pauses, debtor
        )
        record.recording.unlink(missing_ok=True)
        note_path(record.recording).unlink(missing_ok=True)
    early = keep_early_media(record, announcements_dir(site.spool))  # a failed call's announcement
    with site.sessions() as session:
        learn_status(session, key, record, site.clock())
        if early is not None:
            session.add(announcement_job(record, key, early, site.clock()))
        close_request(session, record, site.clock())
        call_ended(session, record.call_id, site.clock())
        reserved = take(session, record.call_id)
        fields = {
            "sip_call_id": record.sip_call_id[:200],
            "agent": record.agent,
            "number_key": key,
            "number_masked": record.number,
            "debtor_id": reserved.debtor_id if reserved is not None else debtor.debtor_id,
            "holds_json": json.dumps([list(span) for span in record.holds]),
            "started_at": reserved.reserved_at if reserved is not None else started,
            "placed": record.caller_id is not None,
            "answered": record.answered,
            "duration_s": record.duration_s,
            "ring_s": record.ring_s,
            "sip_status": record.sip_status,
            "sip_reason": record.sip_reason,
            "rule": record.rule,
            "ended_by": record.ended_by.value,
            "caller_id": record.caller_id,
            "recording_id": recording_id,
        }
        booked = session.scalar(select(CallAttempt).where(CallAttempt.call_id == record.call_id))
        if booked is None:
            session.add(CallAttempt(call_id=record.call_id, **fields))
        else:  # settled as abandoned while it ran: the real outcome replaces the guess
            for name, value in fields.items():
                setattr(booked, name, value)
        session.commit()
    log.info(
        "call booked: %s %s",
        record.sip_status,
        "recorded" if recording_id else "no recording",
        extra={"call_id": record.call_id, "number": record.number},
    )


def store_leftover(site: CallSite) -> Callable[[Leftover], None]:
    """Salvage's `store`: a killed worker's call, spooled and booked as ended at the restart."""

    def store(leftover: Leftover) -> None:
        with site.sessions() as session:
            if session.scalar(select(Recording.id).where(Recording.call_id == leftover.call_id)):
                return  # spooled before the crash; only the local copy was left
        started = datetime.fromtimestamp(leftover.started_at, UTC)
        recording_id = store_recording(
            site, leftover.recording, leftover.call_id, leftover.agent, started
        )
        with site.sessions() as session:
            reserved = take(session, leftover.call_id)
            if session.scalar(
                select(CallAttempt.id).where(CallAttempt.call_id == leftover.call_id)
            ):
                session.commit()  # booked before the crash: only the reservation was left
                return
            session.add(
                CallAttempt(
                    call_id=leftover.call_id,
                    sip_call_id="",
                    agent=leftover.agent,
                    number_key=leftover.number_key,
                    number_masked=leftover.number_masked,
                    debtor_id=reserved.debtor_id if reserved is not None else None,
                    caller_id=reserved.caller_id if reserved is not None else None,
                    started_at=reserved.reserved_at if reserved is not None else started,
                    placed=True,
                    answered=True,
                    duration_s=0.0,
                    sip_status=0,
                    sip_reason="the dialer stopped mid-call; ended at its restart",
                    ended_by="dialguard",
                    recording_id=recording_id,
                )
            )
            session.commit()

    return store

"""Click-to-call in the worker: claiming a queued request, and closing it once the call ended.

The API queues a request (api/routes/calls.py) with the number sealed and the
debtor's facts copied in; a worker with room claims the oldest, rings the
agent's registered softphone (through the SIP edge, which finds it) and,
once they answer, dials the number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dialer.calls import CallRecord
from dialer.models import CallRequest
from dialer.site import CallSite
from dialer.softphones import registration
from recording.fields import open_text


def request_claimer(site: CallSite, worker: int) -> Callable[[], tuple[int, str, str, str] | None]:
    """Takes the oldest queued click-to-call, if no other worker took it first."""

    def claim() -> tuple[int, str, str, str] | None:
        now = site.clock()
        with site.sessions() as session:
            request = session.scalar(
                select(CallRequest)
                .where(CallRequest.status == "queued")
                .order_by(CallRequest.id)
                .limit(1)
            )
            if request is None:
                return None
            taken = session.execute(
                update(CallRequest)
                .where(CallRequest.id == request.id, CallRequest.status == "queued")
                .values(status="claimed", worker=worker)
            )
            session.commit()
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker was quicker
            binding = registration(session, request.agent, now)
            if binding is None:
                request.status, request.finished_at = "failed", now
                request.detail = "the agent's softphone is not registered"
                session.commit()
                return None
            e164 = open_text(site.keys, request.number_sealed)
            return request.id, request.agent, binding.contact, e164

    return claim


def close_request(session: Session, record: CallRecord, now: datetime) -> None:
    """The request a finished call answered: done if the number was dialed, else failed."""
    if record.request_id is None:
        return
    request = session.get(CallRequest, record.request_id)
    if request is None:
        return
    request.status = "done" if record.caller_id is not None else "failed"
    request.call_id, request.sip_status, request.finished_at = (
        record.call_id,
        record.sip_status,
        now,
    )
    request.detail = (f"{record.rule}: " if record.rule else "") + record.sip_reason

"""HTTP API v1: click-to-call, and pausing a running call's recording.

Click-to-call: the agent's softphone rings first, then the number is dialed.
The request is queued in the database; a dialer worker with room claims it,
makes the same checks as for a softphone's own call (policy, do-not-call,
number status, recorders), rings the agent and, once they answer, dials.
The number waits in the queue encrypted. A request for a debtor carries the
debtor's facts the call policy needs (client, time zone, agreed call-back
windows), as `dialer.debtors.debtor_facts` gives them from the debtor record
now, so the worker decides on the record as it was when the call was asked
for; nothing sealed is copied.

Pause and resume: queued as a command for the worker carrying the call, which
applies it within about a second exactly as the agent's `*7`/`*8` would. The
request is audited here, with who asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.models import Role, User
from api.audit.chain import record
from api.import_messages import say
from api.web.auth import require
from api.web.params import RowId
from api.web.services import services_of
from dialer.debtors import CLIENT_PATTERN, REQUEST_DEBTOR, Debtor, debtor_facts
from dialer.models import CallCommand, CallRequest, LiveCall
from dialer.numbers import MalformedNumber, mask, normalize
from dialer.softphones import registration
from recording.db.engine import as_utc
from recording.fields import seal_text

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

_NAME = r"^[A-Za-z0-9._@-]{1,64}$"
_CALL_ID = r"^[A-Za-z0-9]{1,32}$"


class CallIn(BaseModel):
    agent: Annotated[str, Field(pattern=_NAME, description="whose softphone rings first")]
    number: Annotated[str, Field(min_length=3, max_length=32, description="as dialed")]
    debtor_id: Annotated[
        str | None,
        Field(
            pattern=REQUEST_DEBTOR,
            description="the debtor's account id (as sent with the debtor record); its "
            "do-not-call lists, time zone and call-back windows apply",
        ),
    ] = None
    client: Annotated[
        str | None,
        Field(pattern=CLIENT_PATTERN, description="the debtor's client, when the id is not unique"),
    ] = None


class CallOut(BaseModel):
    id: int
    agent: str
    number: str  # masked
    status: str  # queued | claimed | done | failed
    call_id: str | None
    sip_status: int | None
    detail: str | None
    created_at: datetime


def _out(row: CallRequest) -> CallOut:
    return CallOut(
        id=row.id,
        agent=row.agent,
        number=row.number_masked,
        status=row.status,
        call_id=row.call_id,
        sip_status=row.sip_status,
        detail=row.detail,
        created_at=as_utc(row.created_at),
    )


@router.post("", response_model=CallOut, status_code=202)
def click_to_call(
    request: Request,
    body: CallIn,
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CallOut:
    """Queue a call: 202 now; poll `GET /api/v1/calls/{id}` for how it went."""
    if user.role is Role.AGENT and body.agent != user.username:
        raise HTTPException(403, "an agent places calls from their own softphone only")
    services = services_of(request)
    try:
        e164 = normalize(
            body.number, services.phone_region, allow_vanity=services.allow_vanity_numbers
        )
    except MalformedNumber as exc:
        raise HTTPException(422, say(exc.said)) from None
    if body.client is not None and body.debtor_id is None:
        raise HTTPException(422, "a client is given only with the debtor_id it qualifies")
    now = services.clock().astimezone(UTC)
    with services.sessions() as session:
        debtor = _debtor(session, body.debtor_id, body.client) if body.debtor_id else None
        facts = debtor_facts(debtor)  # none named: empty, and the request carries no debtor
        if registration(session, body.agent, now) is None:  # Kamailio's location table
            raise HTTPException(
                409, f"{body.agent}'s softphone is not registered: it cannot be rung"
            )
        row = CallRequest(
            agent=body.agent,
            number_sealed=seal_text(services.keys, e164),
            number_masked=mask(e164),
            **facts.request_columns(),
            requested_by=user.username,
            status="queued",
            created_at=now,
        )
        session.add(row)
        session.commit()
        detail = {"request": row.id, "agent": body.agent}
        if debtor is not None:
            detail["debtor"] = f"{debtor.client_id}/{debtor.external_id}"
        record(session, user.username, "click-to-call", mask(e164), now, detail=detail)
        return _out(row)


def _debtor(session: Session, external_id: str, client: str | None) -> Debtor:
    """The one debtor the request names; several clients may use the same account id."""
    query = select(Debtor).where(Debtor.external_id == external_id)
    if client is not None:
        query = query.where(Debtor.client_id == client)
    found = session.scalars(query.order_by(Debtor.id).limit(2)).all()
    named = f"{client}/{external_id}" if client else external_id
    if not found:
        raise HTTPException(422, f"no debtor {named}: send the debtor record first")
    if len(found) > 1:
        raise HTTPException(422, f"debtor id {external_id} is used by several clients; add client")
    return found[0]


@router.get("/{request_id}", response_model=CallOut)
def call_status(
    request: Request,
    request_id: RowId,
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CallOut:
    services = services_of(request)
    with services.sessions() as session:
        row = session.get(CallRequest, request_id)
        if row is None or (user.role is Role.AGENT and row.agent != user.username):
            raise HTTPException(404, f"no call request {request_id}")
        return _out(row)


# --- pausing a running call's recording (card data) --------------------------------------------


class CommandOut(BaseModel):
    id: int
    call_id: str
    action: str  # pause | resume
    status: str  # queued: the call's worker applies it within about a second
    requested_at: datetime


CallId = Annotated[str, Path(pattern=_CALL_ID, description="the call id (as in call records)")]


@router.post("/{call_id}/pause", response_model=CommandOut, status_code=202)
def pause_recording(
    request: Request,
    call_id: CallId,
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CommandOut:
    """Mute the call's recording while card details are read out (PCI DSS); 409 if paused."""
    return _command(request, call_id, "pause", user)


@router.post("/{call_id}/resume", response_model=CommandOut, status_code=202)
def resume_recording(
    request: Request,
    call_id: CallId,
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CommandOut:
    """Record again after a pause; 409 if the recording is not paused."""
    return _command(request, call_id, "resume", user)


def _command(request: Request, call_id: str, action: str, user: User) -> CommandOut:
    services = services_of(request)
    now = services.clock().astimezone(UTC)
    with services.sessions() as session:
        live = session.get(LiveCall, call_id)
        if live is None or (user.role is Role.AGENT and live.agent != user.username):
            raise HTTPException(404, f"no call {call_id} in progress")  # ended, or not yours
        # A command still waiting for the worker decides what the recording will be.
        waiting = session.scalar(
            select(CallCommand)
            .where(CallCommand.call_id == call_id, CallCommand.status == "queued")
            .order_by(CallCommand.id.desc())
            .limit(1)
        )
        paused = waiting.action == "pause" if waiting is not None else live.paused
        if action == "pause" and paused:
            raise HTTPException(409, f"the recording of call {call_id} is already paused")
        if action == "resume" and not paused:
            raise HTTPException(409, f"the recording of call {call_id} is not paused")
        row = CallCommand(
            call_id=call_id,
            action=action,
            requested_by=user.username,
            requested_at=now,
            status="queued",
        )
        session.add(row)
        session.flush()
        out = CommandOut(
            id=row.id, call_id=call_id, action=action, status=row.status, requested_at=now
        )
        record(
            session,
            user.username,
            f"recording-{action}",
            call_id,
            now,
            detail={"command": row.id, "source": "api", "agent": live.agent},
        )
        return out

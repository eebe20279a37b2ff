"""HTTP API v1: click-to-call. The agent's softphone rings first, then the number is dialed.

The request is queued in the database; a dialer worker with room claims it,
makes the same checks as for a softphone's own call (policy, do-not-call,
number status, recorders), rings the agent and, once they answer, dials.
The number waits in the queue encrypted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from api.audit import record
from api.auth import require
from api.models import Role, User
from api.services import Services
from dialer.models import CallRequest, SipRegistration
from dialer.numbers import MalformedNumber, mask, normalize
from recording.db import as_utc
from recording.fields import seal_text

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

_NAME = r"^[A-Za-z0-9._@-]{1,64}$"


class CallIn(BaseModel):
    agent: Annotated[str, Field(pattern=_NAME, description="whose softphone rings first")]
    number: Annotated[str, Field(min_length=3, max_length=32, description="as dialed")]
    debtor_id: Annotated[str | None, Field(pattern=_NAME)] = None


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
        id=row.id, agent=row.agent, number=row.number_masked, status=row.status,
        call_id=row.call_id, sip_status=row.sip_status, detail=row.detail,
        created_at=as_utc(row.created_at),
    )  # fmt: skip


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.post("", response_model=CallOut, status_code=202)
def click_to_call(
    request: Request,
    body: CallIn,
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CallOut:
    """Queue a call: 202 now; poll `GET /api/v1/calls/{id}` for how it went."""
    if user.role is Role.AGENT and body.agent != user.username:
        raise HTTPException(403, "an agent places calls from their own softphone only")
    services = _services(request)
    try:
        e164 = normalize(body.number, services.phone_region)
    except MalformedNumber as exc:
        raise HTTPException(422, str(exc)) from None
    now = services.clock().astimezone(UTC)
    with services.sessions() as session:
        binding = session.get(SipRegistration, body.agent)
        if binding is None or as_utc(binding.expires_at) < now:
            raise HTTPException(
                409, f"{body.agent}'s softphone is not registered: it cannot be rung"
            )
        row = CallRequest(
            agent=body.agent,
            number_sealed=seal_text(services.keys, e164),
            number_masked=mask(e164),
            debtor_id=body.debtor_id,
            requested_by=user.username,
            status="queued",
            created_at=now,
        )
        session.add(row)
        session.commit()
        record(session, user.username, "click-to-call", mask(e164), now,
               detail={"request": row.id, "agent": body.agent})  # fmt: skip
        return _out(row)


@router.get("/{request_id}", response_model=CallOut)
def call_status(
    request: Request,
    request_id: Annotated[int, Path(ge=1)],
    user: Annotated[User, Depends(require(Role.AGENT, Role.SUPERVISOR, Role.ADMIN))],
) -> CallOut:
    services = _services(request)
    with services.sessions() as session:
        row = session.get(CallRequest, request_id)
        if row is None or (user.role is Role.AGENT and row.agent != user.username):
            raise HTTPException(404, f"no call request {request_id}")
        return _out(row)

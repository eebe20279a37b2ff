"""HTTP API v1: call outcomes, the same ones the webhook pushes, for the collection system
to read back (a missed push, a backfill, calls made before the webhook was set).

Supervisors and admins see every outcome; a client bank's auditor sees only
the outcomes that name their client. Each read is audited: outcomes name
debtors and agents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel

from api.accounts.models import Role, User
from api.audit.chain import record
from api.outcomes.payload import outcome_json
from api.outcomes.store import find_outcomes, outcomes_by_id
from api.web.auth import client_scope, require
from api.web.params import MAX_ROW_ID, Moment
from api.web.services import services_of

router = APIRouter(prefix="/api/v1/outcomes", tags=["outcomes"])
_NAME = r"^[A-Za-z0-9._@:-]{1,64}$"
READERS = (Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
#: call_attempts.id is a 32-bit integer on PostgreSQL: a larger id is invalid input, not a 500.
AttemptId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the call attempt's id")]


class QaOut(BaseModel):
    result_id: int
    score: int
    pack: str
    pack_version: str
    scored_at: datetime


class OutcomeOut(BaseModel):
    """One call attempt: the number masked, never in full."""

    attempt_id: int
    call_id: str
    agent: str
    number: str
    number_role: str | None
    debtor_id: str | None
    client: str | None
    started_at: datetime
    decision: Literal["placed", "refused", "not_placed"]
    rule: str | None
    caller_id: str | None
    sip_status: int
    sip_reason: str
    answered: bool
    ring_s: float
    talk_s: float
    ended_by: str
    recording_id: str | None
    qa: QaOut | None


class OutcomePage(BaseModel):
    outcomes: list[OutcomeOut]
    limit: int
    offset: int
    next_offset: int | None


@router.get("", response_model=OutcomePage)
def list_outcomes(
    request: Request,
    user: Annotated[User, Depends(require(*READERS))],
    since: Annotated[Moment | None, Query(description="attempts started at or after")] = None,
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    debtor: Annotated[str | None, Query(pattern=_NAME, description="the debtor's id")] = None,
    client: Annotated[str | None, Query(pattern=_NAME)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OutcomePage:
    """Outcomes oldest first (by attempt id), with the QA score once there is one."""
    services = services_of(request)
    client = client_scope(user, client)
    with services.sessions() as session:
        found = find_outcomes(
            session,
            since=since,
            agent=agent,
            debtor=debtor,
            client=client,
            offset=offset,
            limit=limit + 1,
        )
        detail = {
            "agent": agent,
            "debtor": debtor,
            "client": client,
            "since": since.isoformat() if since else None,
            "offset": offset,
            "count": min(len(found), limit),
        }
        record(
            session,
            user.username,
            "outcomes-read",
            "call_outcomes",
            services.clock(),
            detail=detail,
        )
    return OutcomePage(
        outcomes=[OutcomeOut.model_validate(outcome_json(o)) for o in found[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(found) > limit else None,
    )


@router.get("/{attempt_id}", response_model=OutcomeOut)
def get_outcome(
    request: Request,
    attempt_id: AttemptId,
    user: Annotated[User, Depends(require(*READERS))],
) -> OutcomeOut:
    """One outcome; an auditor gets 404 for another client's."""
    services = services_of(request)
    scope = client_scope(user, None)
    with services.sessions() as session:
        outcome = outcomes_by_id(session, [attempt_id]).get(attempt_id)
        if outcome is None or (scope is not None and outcome.client != scope):
            raise HTTPException(404, f"no call outcome {attempt_id}")
        detail = {"call_id": outcome.call_id}
        record(
            session,
            user.username,
            "outcome-view",
            f"attempt:{attempt_id}",
            services.clock(),
            detail=detail,
        )
    return OutcomeOut.model_validate(outcome_json(outcome))

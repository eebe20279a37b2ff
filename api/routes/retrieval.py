"""HTTP API v1: retrieval requests, each due by the end of the working day it is made.

A client bank or a supervisor asks for "the recording for case X"; a
supervisor answers it with a recording id. Requests, answers and the late
report are audited like any other access.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.accounts.models import Role, User
from api.audit.chain import record
from api.recordings.access import may_see
from api.recordings.retrieval import RetrievalRequest, is_late
from api.web.auth import require
from api.web.params import Reason, RowId
from api.web.services import services_of
from recording.db.engine import as_utc
from recording.models import Recording

router = APIRouter(prefix="/api/v1/retrieval-requests", tags=["retrieval requests"])

_REF = r"^[A-Za-z0-9._:#/-]{1,100}$"
_RECORDING = r"^[0-9a-f]{32}$"
ASKERS = (Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.QA)
ANSWERERS = (Role.SUPERVISOR, Role.ADMIN)


class RequestIn(BaseModel):
    subject: Annotated[
        str, Field(pattern=_REF, description="case, debtor or call reference (never a name)")
    ]
    reason: Reason
    recording_id: Annotated[str | None, Field(pattern=_RECORDING)] = None


class FulfilIn(BaseModel):
    recording_id: Annotated[str, Field(pattern=_RECORDING)]


class RequestOut(BaseModel):
    id: int
    subject: str
    reason: str
    recording_id: str | None
    requested_by: str
    requested_at: datetime
    due_at: datetime
    fulfilled_at: datetime | None
    fulfilled_by: str | None
    late: bool


class RequestList(BaseModel):
    requests: list[RequestOut]


def _out(row: RetrievalRequest, now: datetime) -> RequestOut:
    return RequestOut(
        id=row.id,
        subject=row.subject,
        reason=row.reason,
        recording_id=row.recording_id,
        requested_by=row.requested_by,
        requested_at=as_utc(row.requested_at),
        due_at=as_utc(row.due_at),
        fulfilled_at=as_utc(row.fulfilled_at) if row.fulfilled_at else None,
        fulfilled_by=row.fulfilled_by,
        late=is_late(row, now),
    )


@router.post("", response_model=RequestOut, status_code=201)
def create_request(
    request: Request, body: RequestIn, user: Annotated[User, Depends(require(*ASKERS))]
) -> RequestOut:
    """Ask for a recording; the answer is due by the end of today's working day.

    A recording named here must be one the requester may see: an auditor's
    own client's. Another client's is answered as if it did not exist.
    """
    services = services_of(request)
    now = services.clock().astimezone(UTC)  # stored in UTC: SQLite keeps no offset
    if user.role is Role.AUDITOR and user.client_id is None:
        raise HTTPException(403, "this auditor account is not assigned to a client")
    with services.sessions() as session:
        if body.recording_id and not may_see(user, session.get(Recording, body.recording_id)):
            raise HTTPException(422, f"no recording {body.recording_id}")
        row = RetrievalRequest(
            subject=body.subject,
            recording_id=body.recording_id,
            reason=body.reason,
            requested_by=user.username,
            requested_at=now,
            due_at=services.working_day.due(now).astimezone(UTC),
            client_id=user.client_id if user.role is Role.AUDITOR else None,
        )
        session.add(row)
        session.commit()
        record(
            session,
            user.username,
            "retrieval-request",
            body.subject,
            now,
            reason=body.reason,
            detail={"request": row.id},
        )
        return _out(row, now)


@router.get("", response_model=RequestList)
def list_requests(
    request: Request,
    user: Annotated[User, Depends(require(*ASKERS))],
    open_only: Annotated[bool, Query(alias="open", description="only unanswered")] = False,
    late_only: Annotated[bool, Query(alias="late", description="only late ones")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RequestList:
    """The queue, soonest due first; `late=true` is the report of missed due times.

    Supervisors and admins see every request; others see their own.
    """
    services = services_of(request)
    now = services.clock().astimezone(UTC)  # stored in UTC: SQLite keeps no offset
    query = select(RetrievalRequest).order_by(RetrievalRequest.due_at, RetrievalRequest.id)
    if user.role not in ANSWERERS:
        query = query.where(RetrievalRequest.requested_by == user.username)
    if open_only:
        query = query.where(RetrievalRequest.fulfilled_at.is_(None))
    if late_only:
        query = query.where(RetrievalRequest.due_at < now)
    with services.sessions() as session:
        rows = [row for row in session.scalars(query) if not late_only or is_late(row, now)]
        return RequestList(requests=[_out(row, now) for row in rows[:limit]])


@router.post("/{request_id}/fulfil", response_model=RequestOut)
def fulfil_request(
    request: Request,
    request_id: RowId,
    body: FulfilIn,
    user: Annotated[User, Depends(require(*ANSWERERS))],
) -> RequestOut:
    """Answer a request with the recording found; answering twice is refused (409)."""
    services = services_of(request)
    now = services.clock().astimezone(UTC)  # stored in UTC: SQLite keeps no offset
    with services.sessions() as session:
        row = session.get(RetrievalRequest, request_id)
        if row is None:
            raise HTTPException(404, f"no retrieval request {request_id}")
        if row.fulfilled_at is not None:
            raise HTTPException(409, f"request {request_id} was answered by {row.fulfilled_by}")
        found = session.get(Recording, body.recording_id)
        if found is None:
            raise HTTPException(422, f"no recording {body.recording_id}")
        if row.client_id is not None and found.client_id != row.client_id:
            raise HTTPException(
                422,
                f"recording {body.recording_id} is not of {row.client_id}, whose auditor asked",
            )
        row.recording_id = body.recording_id
        row.fulfilled_at = now
        row.fulfilled_by = user.username
        session.commit()
        record(
            session,
            user.username,
            "retrieval-fulfil",
            row.subject,
            now,
            detail={"request": row.id, "recording": body.recording_id, "late": is_late(row, now)},
        )
        return _out(row, now)

"""HTTP API v1: reading the audit log. Admins see all of it; a client bank's auditor sees
the accesses to its own client's recordings. Reading the log is itself audited."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from api.accounts.models import Role, User
from api.audit.chain import AuditEntry, record, verify
from api.web.auth import require
from api.web.services import Services
from recording.db.engine import as_utc
from recording.models import Recording

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
_NAME = r"^[A-Za-z0-9._@:-]{1,64}$"


class EntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    entries: list[EntryOut]
    next_offset: int | None
    chain_intact: bool | None  # with check=true (admins): the whole chain verified


def _out(row: AuditEntry) -> EntryOut:
    return EntryOut(
        seq=row.seq,
        at=as_utc(row.at),
        actor=row.actor,
        action=row.action,
        target=row.target,
        reason=row.reason,
        detail=json.loads(row.detail),
        hash=row.hash,
    )


@router.get("", response_model=AuditPage)
def audit_log(
    request: Request,
    user: Annotated[User, Depends(require(Role.ADMIN, Role.AUDITOR))],
    actor: Annotated[str | None, Query(pattern=_NAME)] = None,
    action: Annotated[str | None, Query(pattern=_NAME)] = None,
    date_from: Annotated[datetime | None, Query(alias="from")] = None,
    date_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    check: Annotated[bool, Query(description="admins: verify the whole hash chain")] = False,
) -> AuditPage:
    """Entries oldest first, filtered; each carries its hash in the chain."""
    services: Services = request.app.state.services
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if user.role is Role.AUDITOR:
        if user.client_id is None:
            raise HTTPException(403, "this auditor account is not assigned to a client")
        own = select(Recording.id).where(Recording.client_id == user.client_id)
        query = query.where(AuditEntry.target.in_(own))
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if date_from:
        query = query.where(AuditEntry.at >= date_from)
    if date_to:
        query = query.where(AuditEntry.at < date_to)
    with services.sessions() as session:
        rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
        intact = not verify(session) if check and user.role is Role.ADMIN else None
        entries = [_out(row) for row in rows[:limit]]
        detail = {"actor": actor, "action": action, "offset": offset}
        record(session, user.username, "audit-read", "audit_log", services.clock(), detail=detail)
    return AuditPage(
        entries=entries,
        next_offset=offset + limit if len(rows) > limit else None,
        chain_intact=intact,
    )

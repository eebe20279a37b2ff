"""HTTP API v1: reading and verifying the audit log.

Admins see all of it; a client bank's auditor sees the accesses to its own
client's recordings and the acts on the client itself. Either may ask for
the chain to be verified (`check=true`): the whole chain's hashes and MACs,
and the anchors in WORM storage; the answer names the first entry that does
not match and the last anchor that still holds. Each entry carries its
`prev_hash` and `hash`, so an auditor can also recompute their own entries'
hashes (docs/audit.md). Reading the log is itself audited. Each entry's `action` is the
stored code; `action_label` and `description` say what it means in the reader's language.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, or_, select

from api.accounts.models import Role, User
from api.audit.actions import action_description, action_label
from api.audit.anchors import AnchorStore
from api.audit.chain import AuditEntry, ChainReport, check, record
from api.web.auth import require
from api.web.params import Moment
from api.web.services import Services
from recording.db.engine import as_utc
from recording.models import Recording

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
_NAME = r"^[A-Za-z0-9._@:-]{1,64}$"


class EntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str = Field(description="the stored code, the same in every language")
    action_label: str = Field(description="the action's short name in the reader's language")
    description: str = Field(description="what the action did, in the reader's language")
    target: str
    reason: str | None
    detail: dict[str, Any]
    detail_json: str = Field(description="`detail` exactly as hashed (canonical JSON)")
    prev_hash: str
    hash: str
    mac: str | None = Field(description="HMAC-SHA256 under the audit key; none in legacy entries")


class ProblemOut(BaseModel):
    seq: int
    problem: str


class AnchorOut(BaseModel):
    seq: int
    hash: str
    written_at: datetime
    name: str


class ChainOut(BaseModel):
    intact: bool
    entries: int
    macs_checked: bool
    anchors: int
    first_bad_entry: int | None = Field(description="the first entry that does not match")
    last_anchor_holding: AnchorOut | None = Field(description="the newest anchor that holds")
    problems: list[ProblemOut]


class AuditPage(BaseModel):
    entries: list[EntryOut]
    next_offset: int | None
    chain_intact: bool | None  # with check=true: the whole chain verified
    chain: ChainOut | None = None  # with check=true: what the verification found


def _out(row: AuditEntry) -> EntryOut:
    return EntryOut(
        seq=row.seq,
        at=as_utc(row.at),
        actor=row.actor,
        action=row.action,
        action_label=action_label(row.action),
        description=action_description(row.action),
        target=row.target,
        reason=row.reason,
        detail=json.loads(row.detail),
        detail_json=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
        mac=row.mac,
    )


def chain_report(services: Services) -> ChainReport:
    """The whole chain checked with the audit key and the anchors in the primary bucket."""
    store = AnchorStore(services.copies[0])
    try:
        anchors = store.anchors()
    except Exception as exc:
        raise HTTPException(
            503, f"the audit anchors cannot be read from {store.where}: {type(exc).__name__}"
        ) from None
    with services.sessions() as session:
        report = check(session, services.audit_key, anchors)
    if report.broken_anchors:
        first = report.broken_anchors[0]
        try:  # its body names the first entry that no longer matches
            detailed = store.with_hashes(first)
        except Exception:
            return report
        with services.sessions() as session:
            others = [a for a in anchors if a.name != first.name]
            report = check(session, services.audit_key, [detailed, *others])
    return report


def _chain_out(report: ChainReport) -> ChainOut:
    holding = report.last_holding
    return ChainOut(
        intact=report.intact,
        entries=report.entries,
        macs_checked=report.macs_checked,
        anchors=report.anchors,
        first_bad_entry=report.first_bad,
        last_anchor_holding=(
            AnchorOut(
                seq=holding.seq,
                hash=holding.hash,
                written_at=as_utc(holding.written_at),
                name=holding.name,
            )
            if holding is not None
            else None
        ),
        problems=[ProblemOut(seq=p.seq, problem=p.shown) for p in report.problems],
    )


def visible_entries(user: User) -> Select[AuditEntry]:
    """The entries `user` may read: all for an admin, their client's for an auditor."""
    query = select(AuditEntry)
    if user.role is Role.AUDITOR:
        if user.client_id is None:
            raise HTTPException(403, "this auditor account is not assigned to a client")
        own = select(Recording.id).where(Recording.client_id == user.client_id)
        query = query.where(or_(AuditEntry.target.in_(own), AuditEntry.target == user.client_id))
    return query


@router.get("", response_model=AuditPage)
def audit_log(
    request: Request,
    user: Annotated[User, Depends(require(Role.ADMIN, Role.AUDITOR))],
    actor: Annotated[str | None, Query(pattern=_NAME)] = None,
    action: Annotated[str | None, Query(pattern=_NAME)] = None,
    date_from: Annotated[Moment | None, Query(alias="from")] = None,
    date_to: Annotated[Moment | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    check: Annotated[
        bool, Query(description="verify the whole chain: hashes, MACs and the WORM anchors")
    ] = False,
) -> AuditPage:
    """Entries oldest first, filtered; each carries its place in the chain."""
    services: Services = request.app.state.services
    query = visible_entries(user).order_by(AuditEntry.seq)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    try:  # a bound near year 1 or 9999 may not exist in UTC
        date_from = date_from.astimezone(UTC) if date_from else None
        date_to = date_to.astimezone(UTC) if date_to else None
    except OverflowError:
        raise HTTPException(422, "`from` and `to` must be dates between years 1 and 9999") from None
    if date_from:
        query = query.where(AuditEntry.at >= date_from)
    if date_to:
        query = query.where(AuditEntry.at < date_to)
    report = chain_report(services) if check else None
    with services.sessions() as session:
        rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
        entries = [_out(row) for row in rows[:limit]]
        detail = {"actor": actor, "action": action, "offset": offset, "check": check}
        record(session, user.username, "audit-read", "audit_log", services.clock(), detail=detail)
    return AuditPage(
        entries=entries,
        next_offset=offset + limit if len(rows) > limit else None,
        chain_intact=report.intact if report is not None else None,
        chain=_chain_out(report) if report is not None else None,
    )

"""HTTP API v1: transcript search, audited.

A phrase in any language finds the segments that hold it, newest calls first,
with the second to play from. QA, supervisors and admins search every call;
an auditor of a client bank only that client's. Every search leaves an audit
entry with who searched for what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.accounts.models import Role, User
from api.audit.chain import record
from api.web.auth import client_scope, require
from api.web.params import Moment, SearchText
from api.web.services import services_of
from transcribe.redact import mask_numbers
from transcribe.search import MAX_LIMIT, MAX_OFFSET, SearchQuery, search

router = APIRouter(prefix="/api/v1")

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
_NAME = r"^[A-Za-z0-9._@-]{1,64}$"


class HitOut(BaseModel):
    recording_id: str
    speaker: str
    start: float
    end: float
    snippet: str
    agent: str
    debtor_id: str | None
    recorded_at: datetime


class SearchOut(BaseModel):
    hits: list[HitOut]
    limit: int
    offset: int
    next_offset: int | None


@router.get("/transcripts/search", response_model=SearchOut)
def search_transcripts(
    request: Request,
    user: Annotated[User, Depends(require(*READERS))],
    q: Annotated[SearchText, Query(description="phrase, any language")] = "",
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    debtor: Annotated[str | None, Query(pattern=_NAME)] = None,
    client: Annotated[str | None, Query(pattern=_NAME)] = None,
    speaker: Literal["agent", "debtor"] | None = None,
    date_from: Annotated[Moment | None, Query(alias="from")] = None,
    date_to: Annotated[Moment | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SearchOut:
    """Segments that contain `q`, newest calls first, with the second to play from."""
    services = services_of(request)
    query = SearchQuery(
        text=q,
        agent=agent,
        debtor_id=debtor,
        client_id=client_scope(user, client),
        speaker=speaker,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    with services.sessions() as session:
        page = search(session, query)
        filters = {
            k: v
            for k, v in (
                ("agent", agent),
                ("debtor", debtor),
                ("client", client),
                ("speaker", speaker),
            )
            if v
        }
        # a number searched for is personal data: the audit log keeps it masked, as stored
        record(session, user.username, "search", mask_numbers(q), services.clock(), detail=filters)
    return SearchOut(
        hits=[HitOut(**vars(hit)) for hit in page.hits],
        limit=page.limit,
        offset=page.offset,
        next_offset=page.offset + page.limit if page.has_more else None,
    )

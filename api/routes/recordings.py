"""HTTP API v1: recordings: finding them, their audio, legal holds and retention, each audited.

Every endpoint names the roles it admits; an auditor of a client bank sees
only that client's calls, an agent only their own. Every search and every
retrieval leaves an audit entry with who, when and (for audio) the stated
reason. Transcript search is `api.routes.search`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from api.accounts.models import Role, User
from api.audit.chain import audit_to, record
from api.console.labels import label
from api.exports import FILE_RESPONSES, ExportFormat, file_response, headings
from api.import_messages import say
from api.recordings.access import (
    PLAYBACK_PATTERN,
    PlaybackMismatch,
    audit_access,
    may_download,
    may_see,
)
from api.recordings.contracts import contract_end
from api.recordings.finder import MAX_LIMIT as MAX_RECORDINGS
from api.recordings.finder import BadCursor, Cursor, Page, RecordingQuery, find_recordings
from api.web.auth import client_scope, require
from api.web.params import Moment, Reason
from api.web.services import Services, services_of
from dialer.debtors import EXTERNAL_ID_PATTERN
from dialer.numbers import MalformedNumber, mask, normalize, number_key
from recording.db.engine import as_utc
from recording.lifecycle import extend_retention, set_legal_hold
from recording.models import Recording
from recording.retention import extension
from recording.store import RecordingNotFound, audio_info, read_audio_range

router = APIRouter(prefix="/api/v1")

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
_NAME = r"^[A-Za-z0-9._@-]{1,64}$"
_WINDOW = 256 * 1024
RecordingId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="recording id")]
NUMBER_PATTERN = r"^\+?[0-9][0-9 ()./-]{2,31}$"


class RecordingOut(BaseModel):
    id: str
    call_id: str
    agent: str
    client_id: str | None
    debtor_id: str | None = Field(description="the case (account reference) it is tagged with")
    recorded_at: datetime
    duration_s: float
    status: str
    legal_hold: bool


class RecordingList(BaseModel):
    recordings: list[RecordingOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


def recordings_for(
    request: Request,
    user: User,
    *,
    agent: str | None = None,
    debtor: str | None = None,
    client: str | None = None,
    case: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    via: str = "api",
    export: ExportFormat = ExportFormat.JSON,
) -> Page:
    """One page of the recordings `user` may see that match; the search is audited.

    The API and the console's Recordings page both come here, so they scope
    and audit alike: an agent sees their own calls, an auditor their client's.
    The debtor's number is hashed with the site's number key and only its
    masked form is written to the audit log. An export (the page as a CSV or
    .xlsx file) is audited as `recording-export` instead, with its format, so
    an auditor can find every list that left Dialguard.
    """
    services = services_of(request)
    if user.role is Role.AGENT:
        if agent not in (None, user.username):
            raise HTTPException(403, "an agent sees only their own calls")
        agent = user.username
    scoped = client_scope(user, client)
    key = masked = None
    if debtor:
        secret = services.number_secret
        if not secret:
            raise HTTPException(503, "the number key is not configured, so numbers cannot be found")
        try:
            e164 = normalize(
                debtor, services.phone_region, allow_vanity=services.allow_vanity_numbers
            )
        except MalformedNumber as exc:
            raise HTTPException(422, say(exc.said)) from None
        key, masked = number_key(secret, e164), mask(e164)
    try:  # a bound near year 1 or 9999 may not exist in UTC
        date_from = date_from.astimezone(UTC) if date_from else None
        date_to = date_to.astimezone(UTC) if date_to else None
    except OverflowError:
        raise HTTPException(422, "`from` and `to` must be dates between years 1 and 9999") from None
    if date_from is not None and date_to is not None and date_to <= date_from:
        raise HTTPException(422, "`to` must be later than `from`")
    try:
        position = Cursor.decode(cursor) if cursor else None
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    query = RecordingQuery(
        agent=agent,
        client=scoped,
        case=case,
        number_key=key,
        date_from=date_from,
        date_to=date_to,
        cursor=position,
        limit=limit,
        client_tagged_only=user.role is Role.AUDITOR,
    )
    filters = {
        name: value
        for name, value in (
            ("agent", agent),
            ("client", scoped),
            ("case", case),
            ("debtor", masked),
            ("from", date_from.isoformat() if date_from else None),
            ("to", date_to.isoformat() if date_to else None),
        )
        if value
    }
    with services.sessions() as session:
        page = find_recordings(session, query)
        exported = {} if export is ExportFormat.JSON else {"format": export.value}
        record(
            session,
            user.username,
            "recording-search" if export is ExportFormat.JSON else "recording-export",
            (" ".join(f"{k}={v}" for k, v in filters.items()) or "all")[:255],
            services.clock(),
            detail={
                **filters,
                **exported,
                "results": len(page.recordings),
                "next_page": bool(cursor),
                "via": via,
            },
        )
    return page


EXPORT_HEADERS = (
    "id",
    "call_id",
    "agent",
    "client_id",
    "debtor_id",
    "recorded_at",
    "duration_s",
    "status",
    "legal_hold",
)


@router.get("/recordings", response_model=RecordingList, responses=FILE_RESPONSES)
def list_recordings(
    request: Request,
    user: Annotated[User, Depends(require(*READERS, Role.AGENT))],
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    debtor: Annotated[
        str | None, Query(pattern=NUMBER_PATTERN, description="one of the debtor's phone numbers")
    ] = None,
    client: Annotated[str | None, Query(pattern=_NAME)] = None,
    case: Annotated[
        str | None,
        Query(pattern=EXTERNAL_ID_PATTERN, description="the account reference (external id)"),
    ] = None,
    date_from: Annotated[Moment | None, Query(alias="from")] = None,
    date_to: Annotated[Moment | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,200}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RECORDINGS)] = 50,
    fmt: Annotated[
        ExportFormat,
        Query(alias="format", description="csv or xlsx: the page as a file, audited as an export"),
    ] = ExportFormat.JSON,
) -> RecordingList | Response:
    """Recordings newest first, by case, debtor's number, agent, client and time.

    A case finds the recordings tagged with it and the calls to any number
    on that account; a debtor's number finds the calls to it and every
    recording of the accounts that list it. Supervisors, admins and QA see
    all; an auditor sees their client's, an agent their own. Audited.
    `format=csv|xlsx` gives the same page as a file to open in Excel (not to
    agents, whose pages allow no export); `next_cursor` pages on as before.
    """
    if fmt is not ExportFormat.JSON and user.role is Role.AGENT:
        raise HTTPException(403, "agents may not export call lists")
    page = recordings_for(
        request,
        user,
        agent=agent,
        debtor=debtor,
        client=client,
        case=case,
        date_from=date_from,
        date_to=date_to,
        cursor=cursor,
        limit=limit,
        export=fmt,
    )
    if fmt is not ExportFormat.JSON:
        rows = [
            [
                label("recording", found.status) if name == "status" else getattr(found, name)
                for name in EXPORT_HEADERS
            ]
            for found in page.recordings
        ]
        tz = services_of(request).working_day.tz
        headers = headings(EXPORT_HEADERS, tz, zoned=("recorded_at",))
        return file_response(fmt, "recordings", headers, rows, tz)
    return RecordingList(
        recordings=[RecordingOut(**vars(found)) for found in page.recordings],
        next_cursor=page.next_cursor,
    )


def _visible(services: Services, user: User, recording_id: str) -> None:
    """404 for a recording this user may not see: its existence is not theirs to learn."""
    with services.sessions() as session:
        visible = may_see(user, session.get(Recording, recording_id))
    if not visible:
        raise RecordingNotFound(f"no recording {recording_id}", hint="check the id")


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """(start, end) inclusive of a single-range header; ValueError if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ValueError("unsupported range")
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise ValueError("range outside the recording")
    return start, end


@router.get(
    "/recordings/{recording_id}/audio",
    responses={200: {"content": {"audio/ogg": {}}}, 206: {"content": {"audio/ogg": {}}}},
    response_class=Response,
)
def recording_audio(
    request: Request,
    recording_id: RecordingId,
    user: Annotated[User, Depends(require(*READERS, Role.AGENT))],
    reason: Annotated[Reason, Query(description="why it is played or downloaded")],
    download: bool = False,
    playback: Annotated[
        str | None,
        Query(
            pattern=PLAYBACK_PATTERN,
            description="one id for all the Range requests of one playback: audited once",
        ),
    ] = None,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """Decrypted audio (Ogg/Opus); HTTP Range lets a browser player seek without the rest.

    Everyone who may see a recording may play it; only supervisors and admins
    may download it (`download=true`, an attachment). Both are audited with
    the reason: once per `playback` id, or once per request without one.
    """
    if download and not may_download(user):
        raise HTTPException(403, "only supervisors and admins download recordings; play it instead")
    services = services_of(request)
    _visible(services, user, recording_id)
    info = audio_info(services.sessions, recording_id)
    headers = {"Accept-Ranges": "bytes"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{recording_id}.ogg"'
    span = None
    if range_header:
        try:
            span = parse_range(range_header, info.size)
        except ValueError as exc:
            raise HTTPException(
                416, str(exc), headers={"Content-Range": f"bytes */{info.size}"}
            ) from None
    try:
        audit_access(
            services.sessions,
            user,
            recording_id,
            "download" if download else "play",
            reason,
            services.clock(),
            playback,
            {"range": range_header[:100]} if range_header else {},
        )
    except PlaybackMismatch as exc:
        raise HTTPException(409, str(exc)) from None

    def read(start: int, end: int) -> bytes:
        return read_audio_range(
            services.sessions,
            services.spool,
            services.copies,
            services.keys,
            recording_id,
            start,
            end,
        )

    if span is not None:
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        return Response(read(start, end), status_code=206, media_type="audio/ogg", headers=headers)
    if info.size == 0:
        return Response(b"", media_type="audio/ogg", headers=headers)
    first = read(0, min(info.size, _WINDOW) - 1)  # errors surface before the 200 is sent

    def rest() -> Iterator[bytes]:
        yield first
        for start in range(_WINDOW, info.size, _WINDOW):
            yield read(start, min(info.size, start + _WINDOW) - 1)

    headers["Content-Length"] = str(info.size)
    return StreamingResponse(rest(), media_type="audio/ogg", headers=headers)


class HoldIn(BaseModel):
    on: bool
    reason: Reason


class RetentionIn(BaseModel):
    until: AwareDatetime
    reason: Reason


class LifecycleOut(BaseModel):
    recording_id: str
    legal_hold: bool
    retain_until: datetime


def _lifecycle_out(services: Services, recording_id: str) -> LifecycleOut:
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return LifecycleOut(
            recording_id=row.id, legal_hold=row.legal_hold, retain_until=as_utc(row.retain_until)
        )


@router.post("/recordings/{recording_id}/legal-hold", response_model=LifecycleOut)
def legal_hold(
    request: Request,
    recording_id: RecordingId,
    body: HoldIn,
    user: Annotated[User, Depends(require(Role.SUPERVISOR, Role.ADMIN))],
) -> LifecycleOut:
    """Keep a recording past its retention (a dispute, a court order) or release it."""
    services = services_of(request)
    set_legal_hold(
        services.sessions,
        services.copies,
        recording_id,
        body.on,
        user.username,
        body.reason,
        audit_to(services.sessions, services.clock),
    )
    return _lifecycle_out(services, recording_id)


@router.post("/recordings/{recording_id}/retention", response_model=LifecycleOut)
def retention(
    request: Request,
    recording_id: RecordingId,
    body: RetentionIn,
    user: Annotated[User, Depends(require(Role.ADMIN))],
) -> LifecycleOut:
    """Keep a recording longer: never shorter, never past the site's or the client's maximum,
    and after the client's contract ended only under a legal hold (each refused with 409)."""
    services = services_of(request)
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        if row is None:
            raise RecordingNotFound(f"no recording {recording_id}", hint="check the id")
        try:
            until = body.until.astimezone(UTC)
        except OverflowError:
            raise HTTPException(422, "`until` must be a date between years 1 and 9999") from None
        extension(
            as_utc(row.recorded_at),
            as_utc(row.retain_until),
            until,
            services.max_retention_days(row.client_id),
            contract_end(session, row.client_id),
            row.legal_hold,
        )
    extend_retention(
        services.sessions,
        services.copies,
        recording_id,
        until,
        user.username,
        body.reason,
        audit_to(services.sessions, services.clock),
    )
    return _lifecycle_out(services, recording_id)

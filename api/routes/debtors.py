"""HTTP API v1: debtors upserted one by one or imported in bulk from the collection system.

Names and numbers go in and are sealed at once (`dialer.debtors`); what comes
back is masked numbers, and the name only for the roles that manage
accounts. Every write and every read is audited; an import that is refused
is audited too, with how many rows were bad.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.accounts.models import Role, User
from api.audit.chain import record
from api.i18n import current, gettext, translate
from api.import_messages import field_error, problem, say
from api.web.auth import require
from api.web.problems import PROBLEM, localised
from api.web.services import Services, services_of
from dialer.debtors import (
    CLIENT_PATTERN,
    EXTERNAL_ID_PATTERN,
    MAX_NUMBERS,
    Debtor,
    Sealer,
    find,
    numbers_of,
    upsert,
    validate_row,
    windows_of,
)
from dialer.debtors.bulk_import import (
    XLSX_MEDIA_TYPE,
    Format,
    ImportConflict,
    error_csv,
    guess_format,
    import_debtors,
)
from recording.db.engine import as_utc

router = APIRouter(prefix="/api/v1/debtors", tags=["debtors"])

#: Bigger than 50,000 accounts with several numbers each; anything larger is split.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_ERRORS_SHOWN = 1_000
WRITERS = (Role.ADMIN, Role.SUPERVISOR)
READERS = (Role.ADMIN, Role.SUPERVISOR, Role.QA, Role.AUDITOR)


class NumberIn(BaseModel):
    role: Annotated[str, Field(max_length=32, description="debtor, relative, employer, emergency")]
    number: Annotated[str, Field(max_length=40, description="E.164, or national form")]


class WindowIn(BaseModel):
    days: Annotated[str | list[str], Field(description='"Mon-Fri", "Sat,Sun", or ["mon", ...]')]
    start: Annotated[str, Field(max_length=5, description="HH:MM, the debtor's local time")]
    end: Annotated[str, Field(max_length=5, description="HH:MM, after start")]


class DebtorBody(BaseModel):
    name: Annotated[str, Field(max_length=200)]
    stage: Annotated[str, Field(max_length=32, description="collection stage, e.g. early, legal")]
    timezone: Annotated[
        str | None, Field(max_length=64, description="IANA name; default: the debtor number's")
    ] = None
    numbers: Annotated[list[NumberIn], Field(min_length=1, max_length=MAX_NUMBERS)]
    callback_windows: Annotated[
        list[WindowIn] | str,
        Field(description="agreed call-back windows, or 'Mon-Fri 18:00-20:00; Sat 10:00-12:00'"),
    ] = []


class NumberOut(BaseModel):
    role: str
    number: Annotated[str, Field(description="masked: enough to tell numbers apart, not to dial")]


class DebtorOut(BaseModel):
    client: str
    external_id: str
    name: Annotated[str | None, Field(description="only for admins and supervisors")]
    stage: str
    timezone: str
    callback_windows: list[dict[str, Any]]
    numbers: list[NumberOut]
    created_at: datetime
    updated_at: datetime


class ImportOut(BaseModel):
    rows: int
    created: int
    updated: int
    warnings: list[str] = Field(
        default_factory=list, description="columns not stored, formulas read as their values"
    )
    encoding: str = Field("", description="how the file was read: utf-8, gb18030, xlsx, ...")


ClientPath = Annotated[str, Path(pattern=CLIENT_PATTERN)]
ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]


def _sealer(request: Request) -> Sealer:
    services = services_of(request)
    if not services.number_secret:
        raise HTTPException(503, "the number key is not configured, so debtors cannot be stored")
    return Sealer(services.keys, services.number_secret)


def _now(services: Services) -> datetime:
    return services.clock().astimezone(UTC)  # stored in UTC: SQLite keeps no offset


def _invalid(detail: str, errors: list[dict[str, Any]], total: int | None = None) -> JSONResponse:
    """A 422 problem naming every bad field, its title and detail in the reader's language."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": gettext("Invalid input"),
        "status": 422,
        "detail": localised(detail),
        "code": "invalid_input",
        "errors": errors,
    }
    if total is not None:
        body["error_count"] = total
    language = {"Content-Language": current().replace("_", "-")}
    return JSONResponse(body, status_code=422, media_type=PROBLEM, headers=language)


@router.put(
    "/{client}/{external_id}",
    response_model=DebtorOut,
    responses={201: {"model": DebtorOut, "description": "created"}},
)
def put_debtor(
    request: Request,
    response: Response,
    client: ClientPath,
    external_id: ExternalIdPath,
    body: DebtorBody,
    user: Annotated[User, Depends(require(*WRITERS))],
) -> DebtorOut | JSONResponse:
    """Create or update one account; its numbers are replaced by the ones sent (201 if new)."""
    services = services_of(request)
    sealer = _sealer(request)
    raw = {**body.model_dump(), "client": client, "external_id": external_id}
    checked = validate_row(raw, services.phone_region, allow_vanity=services.allow_vanity_numbers)
    if isinstance(checked, list):
        return _invalid(
            "; ".join(field_error(e.field, e.message, e.said) for e in checked),
            [
                {"field": e.field, "message": problem(e.message, e.said), "code": e.said.code}
                for e in checked
            ],
        )
    now = _now(services)
    with services.sessions() as session:
        try:
            counts = upsert(session, [checked], sealer, now)
            session.commit()
        except IntegrityError:  # a concurrent PUT created it first: ours is now an update
            session.rollback()
            counts = upsert(session, [checked], sealer, now)
            session.commit()
        record(
            session,
            user.username,
            "debtor-upsert",
            f"{client}/{external_id}",
            now,
            detail={"created": counts.created == 1, "numbers": len(checked.numbers)},
        )
        debtor = find(session, client, external_id)
        assert debtor is not None  # written just above, in this session
        if counts.created:
            response.status_code = 201
        return _out(session, debtor, checked.name)


def _out(session: Session, debtor: Debtor, name: str | None) -> DebtorOut:
    return DebtorOut(
        client=debtor.client_id,
        external_id=debtor.external_id,
        name=name,
        stage=debtor.stage,
        timezone=debtor.timezone,
        callback_windows=windows_of(debtor),
        numbers=[
            NumberOut(role=n.role, number=n.number_masked) for n in numbers_of(session, debtor)
        ],
        created_at=as_utc(debtor.created_at),
        updated_at=as_utc(debtor.updated_at),
    )


@router.get("/{client}/{external_id}", response_model=DebtorOut)
def get_debtor(
    request: Request,
    client: ClientPath,
    external_id: ExternalIdPath,
    user: Annotated[User, Depends(require(*READERS))],
) -> DebtorOut:
    """One account with masked numbers; an auditor sees only their own client's (404 otherwise)."""
    if user.role is Role.AUDITOR and user.client_id is None:
        raise HTTPException(403, "this auditor account is not assigned to a client")
    services = services_of(request)
    show_name = user.role in WRITERS
    with services.sessions() as session:
        debtor = find(session, client, external_id)
        if debtor is None or (user.role is Role.AUDITOR and debtor.client_id != user.client_id):
            raise HTTPException(404, f"no debtor {client}/{external_id}")
        name = _sealer(request).name(debtor) if show_name else None
        out = _out(session, debtor, name)
        record(
            session,
            user.username,
            "debtor-view",
            f"{client}/{external_id}",
            _now(services),
            detail={"name_shown": show_name},
        )
        return out


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is larger than {limit // (1024 * 1024)} MB; split it")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                413, f"the upload is larger than {limit // (1024 * 1024)} MB; split it"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _replay(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def _upload(request: Request, fmt: Format | None) -> tuple[bytes, Format, str]:
    """(file bytes, format, file name) from a multipart form or a raw CSV/JSON body."""
    body = await _read_limited(request, MAX_UPLOAD_BYTES)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        try:
            form = await MultiPartParser(request.headers, _replay(body), max_files=1).parse()
        except MultiPartException as exc:
            raise HTTPException(400, f"the form cannot be read: {exc.message}") from None
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise HTTPException(422, "send the file in a form field named 'file'")
        data = await part.read()
        fmt = fmt or guess_format(part.filename, part.content_type)
        if fmt is None:
            raise HTTPException(
                415, "name the file .csv, .xlsx or .json, or pass ?format=csv|xlsx|json"
            )
        return data, fmt, (part.filename or "upload")[:100]
    fmt = fmt or guess_format(None, media)
    if fmt is None:
        raise HTTPException(
            415,
            "send text/csv, an .xlsx workbook, application/json or a multipart form with a "
            "'file' field",
        )
    return body, fmt, "request body"


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@router.post(
    "/import",
    response_model=ImportOut,
    openapi_extra=_IMPORT_BODY,
    responses={
        413: {"description": "the upload is larger than 50 MB"},
        422: {"description": "bad rows, each with line, field and message; nothing was written"},
    },
)
async def import_file(
    request: Request,
    user: Annotated[User, Depends(require(*WRITERS))],
    fmt: Annotated[Format | None, Query(alias="format")] = None,
    encoding: Annotated[
        Literal["auto", "utf-8", "gbk", "gb18030"],
        Query(description="a CSV's encoding; auto detects UTF-8 (with or without BOM) or GBK"),
    ] = "auto",
) -> ImportOut | Response:
    """Import a whole CSV, .xlsx or JSON file, or nothing of it.

    Column headers may be the bank's own, in Chinese or English (docs/imports.md).

    On bad rows the answer is 422 with every error (`Accept: text/csv` gets
    the error file itself: line, field, message).
    """
    services = services_of(request)
    sealer = _sealer(request)
    data, fmt, name = await _upload(request, fmt)
    now = _now(services)
    try:
        result = await run_in_threadpool(
            import_debtors,
            services.sessions,
            data,
            fmt,
            sealer,
            services.phone_region,
            now,
            allow_vanity=services.allow_vanity_numbers,
            encoding=encoding,
        )
    except ImportConflict as exc:
        raise HTTPException(409, f"{gettext(str(exc))} - {gettext(exc.hint)}") from None
    detail = {
        "file": name,
        "format": fmt.value,
        "rows": result.rows,
        "encoding": result.encoding,
    }
    if not result.ok:
        with services.sessions() as session:
            refused = {**detail, "errors": len(result.errors)}
            record(session, user.username, "debtor-import-refused", "debtors", now, detail=refused)
        if "text/csv" in request.headers.get("accept", ""):
            return PlainTextResponse(
                error_csv(result.errors, lambda e: problem(e.message, e.said)),
                422,
                media_type="text/csv",
            )
        shown = result.errors[:MAX_ERRORS_SHOWN]
        return _invalid(
            translate("%(n)s problem(s) in the file; nothing was imported", n=len(result.errors)),
            [
                {
                    "line": e.line,
                    "field": e.field,
                    "message": problem(e.message, e.said),
                    "code": e.said.code if e.said else "invalid",
                }
                for e in shown
            ],
            total=len(result.errors),
        )
    with services.sessions() as session:
        done = {**detail, "created": result.created, "updated": result.updated}
        record(session, user.username, "debtor-import", "debtors", now, detail=done)
    return ImportOut(
        rows=result.rows,
        created=result.created,
        updated=result.updated,
        warnings=[say(w) for w in result.warnings],
        encoding=result.encoding,
    )

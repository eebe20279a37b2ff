"""The web console: server-rendered pages for QA staff, supervisors, auditors and agents.

No front-end build: Jinja templates and a few lines of script on the call
page (the transcript follows the player; a click seeks). Pages use the same
role rules and audit log as the API: a search from the console is audited
like one from a script, and the player pulls audio from the audited API.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import func, select

from api.accounts.models import Role, User
from api.accounts.sessions import COOKIE, LIFETIME, LoginRefused, log_in, log_out, session_user
from api.audit.chain import audit_to, record
from api.recordings.retrieval import RetrievalRequest, is_late
from api.routes.calls import CallIn, click_to_call
from api.routes.qa import step_flag
from api.routes.recordings import NUMBER_PATTERN, recordings_for
from api.routes.retrieval import FulfilIn, RequestIn, create_request, fulfil_request
from api.web.call_check import call_site, facts_of, verdict
from api.web.params import MAX_ROW_ID, RowId
from api.web.services import services_of
from dialer.debtors.records import (
    CLIENT_PATTERN,
    EXTERNAL_ID_PATTERN,
    Debtor,
    DebtorNumber,
    Sealer,
    find,
    numbers_of,
    windows_of,
)
from dialer.models import CallAttempt, CallRequest
from dialer.numbers import MalformedNumber, normalize
from qa_scoring.models import QaFlag
from recording.db.engine import as_utc
from recording.errors import RecordingError
from recording.lifecycle import set_legal_hold
from recording.models import Recording, RecordingStatus
from recording.store import RecordingNotFound
from transcribe.models import SegmentRow, TranscriptRow
from transcribe.search import SearchError, SearchQuery, search
from transcribe.stats import keep_up

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(resources.files("api.console").joinpath("templates")))

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
EXPORTERS = (Role.SUPERVISOR, Role.ADMIN)  # download with a reason, legal hold
_NAME = r"^[A-Za-z0-9._@-]{1,64}$"
RecordingId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def _who(request: Request) -> tuple[User, str] | None:
    """(user, CSRF token) of the browser's live session."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services = services_of(request)
    with services.sessions() as session:
        found = session_user(session, token, services.clock())
        if found is None:
            return None
        user, web = found
        return user, web.csrf


class LoginNeeded(Exception):
    """A console page asked for without a live session; `install` sends it to the login page."""


def install(app: FastAPI) -> None:
    """The console's routes, and its answer to a request without a session: log in first."""
    app.include_router(router)

    async def login_first(request: Request, _: Exception) -> Response:
        return to_login(request)

    app.add_exception_handler(LoginNeeded, login_first)


def page_user(request: Request, *roles: Role) -> tuple[User, str]:
    who = _who(request)
    if who is None:
        raise LoginNeeded
    if who[0].role not in roles:
        raise HTTPException(403, f"the {who[0].role.value} role may not open this page")
    return who


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # transcripts are personal data
    return response


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", title="Log in", user=None, error=None, username="")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    services = services_of(request)
    now = services.clock()
    with services.sessions() as session:
        try:
            user, token = log_in(
                session, username, password, now, code=code, keys=services.keys,
                require_totp=services.require_totp,
            )  # fmt: skip
        except LoginRefused as exc:
            record(session, username[:64] or "-", "login-failed", "console", now,
                   detail={"locked": exc.locked})  # fmt: skip
            return render(request, "login.html", status=401, title="Log in", user=None,
                           error=str(exc), username=username)  # fmt: skip
        record(session, user.username, "login", "console", now)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=64)] = "") -> Response:
    who = _who(request)
    if who is not None and who[1] != csrf:  # not our form: a forged request changes nothing
        raise HTTPException(403, "log out from the console's own button")
    if who is not None:
        services = services_of(request)
        with services.sessions() as session:
            log_out(session, request.cookies.get(COOKIE, ""), services.clock())
            record(session, who[0].username, "logout", "console", services.clock())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request) -> Response:
    who = _who(request)
    if who is None:
        return to_login(request)
    return RedirectResponse("/agent" if who[0].role is Role.AGENT else "/search", status_code=303)


@router.get("/search")
def search_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    speaker: Annotated[str, Query(pattern=r"^(agent|debtor)?$")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    user, csrf = page_user(request, *READERS)
    context: dict[str, Any] = {
        "title": "Search", "user": user, "csrf": csrf, "q": q, "agent": agent,
        "speaker": speaker, "hits": [], "searched": False, "error": None, "next_offset": None,
    }  # fmt: skip
    if q.strip() or agent:
        services = services_of(request)
        client = user.client_id if user.role is Role.AUDITOR else None
        if user.role is Role.AUDITOR and client is None:
            raise HTTPException(403, "this auditor account is not assigned to a client")
        query = SearchQuery(
            text=q,
            agent=agent,
            client_id=client,
            speaker="agent" if speaker == "agent" else "debtor" if speaker == "debtor" else None,
            limit=20,
            offset=offset,
        )
        with services.sessions() as session:
            try:
                page = search(session, query)
            except SearchError as exc:
                context["error"] = str(exc)
            else:
                record(session, user.username, "search", q, services.clock(),
                       detail={"agent": agent, "speaker": speaker, "via": "console"})  # fmt: skip
                context["hits"] = page.hits
                context["searched"] = True
                if page.has_more:
                    context["next_offset"] = offset + page.limit
                    context["next_url"] = "/search?" + urlencode(
                        {"q": q, "agent": agent or "", "speaker": speaker,
                         "offset": offset + page.limit}
                    )  # fmt: skip
    return render(request, "search.html", **context)


@router.get("/calls/{recording_id}")
def call_page(
    request: Request,
    recording_id: RecordingId,
    t: Annotated[float, Query(ge=0, le=86_400)] = 0.0,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    user, csrf = page_user(request, *READERS, Role.AGENT)
    return _call_view(request, user, csrf, recording_id, t, reason)


def _call_view(
    request: Request,
    user: User,
    csrf: str,
    recording_id: str,
    t: float,
    reason: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    services = services_of(request)
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        hidden = row is None or (
            (user.role is Role.AGENT and row.agent != user.username)
            or (user.role is Role.AUDITOR and row.client_id != user.client_id)
        )
        if hidden or row is None:
            raise HTTPException(404, f"no recording {recording_id}")
        latest = session.scalar(
            select(TranscriptRow.id)
            .where(TranscriptRow.recording_id == recording_id)
            .order_by(TranscriptRow.created_at.desc())
            .limit(1)
        )
        segments = (
            list(
                session.scalars(
                    select(SegmentRow)
                    .where(SegmentRow.transcript_id == latest)
                    .order_by(SegmentRow.start_s)
                )
            )
            if latest is not None
            else []
        )
        flags = list(
            session.scalars(
                select(QaFlag).where(QaFlag.recording_id == recording_id).order_by(QaFlag.start_s)
            )
        )
    audio = f"/api/v1/recordings/{recording_id}/audio?" + urlencode({"reason": reason})
    reason = reason.strip()
    return render(
        request, "call.html", status=status, title=f"Call {row.call_id}", user=user, csrf=csrf,
        recording=row, segments=segments, t=t, reason=reason if len(reason) >= 3 else "",
        audio_url=audio, pauses=json.loads(row.pauses_json or "[]"), flags=flags,
        can_review=user.role in (Role.QA, Role.SUPERVISOR),
        can_export=user.role in EXPORTERS, error=error,
    )  # fmt: skip


@router.post("/calls/{recording_id}/legal-hold")
def legal_hold_form(
    request: Request,
    recording_id: RecordingId,
    on: Annotated[bool, Form()],
    reason: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=64)],
    listening: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Place or lift a legal hold from the call page: the API's logic, audited the same way."""
    user, token = page_user(request, *EXPORTERS)
    if csrf != token:
        raise HTTPException(403, "change a legal hold from the console's own form")
    if len(reason.strip()) < 3:
        return _call_view(request, user, token, recording_id, 0.0, listening,
                          error="Say why the hold is placed or lifted (3 characters or more).",
                          status=422)  # fmt: skip
    services = services_of(request)
    try:
        set_legal_hold(
            services.sessions, services.copies, recording_id, on, user.username,
            reason.strip(), audit_to(services.sessions, services.clock),
        )  # fmt: skip
    except RecordingNotFound:
        raise HTTPException(404, f"no recording {recording_id}") from None
    except RecordingError as exc:
        return _call_view(request, user, token, recording_id, 0.0, listening,
                          error=str(exc), status=409)  # fmt: skip
    return RedirectResponse(
        f"/calls/{recording_id}?" + urlencode({"reason": listening}), status_code=303
    )


@router.post("/calls/{recording_id}/flags/{flag_id}")
def review_flag_form(
    request: Request,
    recording_id: RecordingId,
    flag_id: RowId,
    action: Annotated[str, Form(pattern=r"^(confirm|dismiss)$")],
    csrf: Annotated[str, Form(max_length=64)],
    comment: Annotated[str, Form(max_length=1000)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A reviewer's confirm or dismiss from the call page; then back to the same call."""
    user, token = page_user(request, Role.QA, Role.SUPERVISOR)
    if csrf != token:
        raise HTTPException(403, "review from the console's own form")
    flag = step_flag(request, flag_id, action, comment or None, user)
    query = urlencode({"t": f"{flag.start:.1f}", "reason": reason})
    return RedirectResponse(f"/calls/{recording_id}?{query}", status_code=303)


@router.get("/status")
def status_page(request: Request) -> Response:
    """Is everything up, and is transcription keeping up with the calls?"""
    user, csrf = page_user(request, Role.SUPERVISOR, Role.ADMIN)
    services = services_of(request)
    components = request.app.state.health.check()
    now = services.clock()
    with services.sessions() as session:
        keeping = keep_up(session, now)
        waiting = session.scalar(
            select(func.count()).where(Recording.status == RecordingStatus.SPOOLED)
        )
        since = now - timedelta(hours=24)
        calls = session.execute(
            select(CallAttempt.placed, CallAttempt.answered, func.count())
            .where(CallAttempt.started_at >= since)
            .group_by(CallAttempt.placed, CallAttempt.answered)
        ).all()
    placed = sum(n for was_placed, _, n in calls if was_placed)
    answered = sum(n for _, was_answered, n in calls if was_answered)
    refused = sum(n for was_placed, _, n in calls if not was_placed)
    return render(
        request, "status.html", title="Status", user=user, csrf=csrf, components=components,
        keep=keeping, waiting=waiting or 0, placed=placed, answered=answered, refused=refused,
    )  # fmt: skip


@router.get("/agent")
def agent_page(request: Request) -> Response:
    user, csrf = page_user(request, Role.AGENT)
    services = services_of(request)
    with services.sessions() as session:
        calls = list(
            session.scalars(
                select(CallAttempt)
                .where(CallAttempt.agent == user.username)
                .order_by(CallAttempt.started_at.desc())
                .limit(200)
            )
        )
    return render(request, "agent.html", title="My calls", user=user, csrf=csrf, calls=calls)


# --- supervisors: recordings ------------------------------------------------------------------

_DAY = r"^(\d{4}-\d{2}-\d{2})?$"


def _day_start(day: str, tz: ZoneInfo, after: bool = False) -> datetime | None:
    """The first instant of `day` (YYYY-MM-DD) in the site's zone; of the next day if `after`."""
    if not day:
        return None
    try:
        start = date.fromisoformat(day) + timedelta(days=1 if after else 0)
    except (ValueError, OverflowError):
        raise HTTPException(422, f"{day} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(start, time(0), tzinfo=tz)


@router.get("/recordings")
def recordings_page(
    request: Request,
    case: Annotated[str, Query(max_length=100)] = "",
    debtor: Annotated[str, Query(max_length=32)] = "",
    agent: Annotated[str, Query(max_length=64)] = "",
    client: Annotated[str, Query(max_length=64)] = "",
    day_from: Annotated[str, Query(alias="from", pattern=_DAY)] = "",
    day_to: Annotated[str, Query(alias="to", pattern=_DAY)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Find recordings by case, debtor's number, agent, client and day; each opens the player."""
    user, csrf = page_user(request, *READERS)
    services = services_of(request)
    form = {"case": case.strip(), "debtor": debtor.strip(), "agent": agent.strip(),
            "client": client.strip(), "from": day_from, "to": day_to}  # fmt: skip
    context: dict[str, Any] = {
        "title": "Recordings", "user": user, "csrf": csrf, "form": form, "found": [],
        "searched": False, "error": None, "next_url": None, "tz": services.working_day.tz.key,
    }  # fmt: skip
    if any(form.values()):
        tz = services.working_day.tz
        try:
            page = recordings_for(
                request, user,
                agent=_checked(form["agent"], _NAME, "agent"),
                debtor=_checked(form["debtor"], NUMBER_PATTERN, "number"),
                client=_checked(form["client"], _NAME, "client"),
                case=_checked(form["case"], EXTERNAL_ID_PATTERN, "case"),
                date_from=_day_start(day_from, tz), date_to=_day_start(day_to, tz, after=True),
                cursor=cursor or None, limit=50, via="console",
            )  # fmt: skip
        except HTTPException as exc:
            if exc.status_code not in (422, 503):
                raise
            context["error"] = str(exc.detail)
        else:
            context["found"] = page.recordings
            context["searched"] = True
            if page.next_cursor:
                context["next_url"] = "/recordings?" + urlencode(
                    {**{k: v for k, v in form.items() if v}, "cursor": page.next_cursor}
                )
    status = 422 if context["error"] else 200
    return render(request, "recordings.html", status=status, **context)


def _checked(value: str, pattern: str, what: str) -> str | None:
    if not value:
        return None
    if not re.match(pattern, value):
        raise HTTPException(422, f"that {what} holds characters it cannot have")
    return value


# --- supervisors: retrieval requests ----------------------------------------------------------


def _queue_view(
    request: Request, user: User, csrf: str, error: str | None = None, status: int = 200,
    subject: str = "", reason: str = "",
) -> HTMLResponse:  # fmt: skip
    services = services_of(request)
    now = services.clock().astimezone(UTC)
    tz = services.working_day.tz
    with services.sessions() as session:
        waiting = list(
            session.scalars(
                select(RetrievalRequest)
                .where(RetrievalRequest.fulfilled_at.is_(None))
                .order_by(RetrievalRequest.due_at, RetrievalRequest.id)
                .limit(500)
            )
        )
        answered = list(
            session.scalars(
                select(RetrievalRequest)
                .where(RetrievalRequest.fulfilled_at.is_not(None))
                .order_by(RetrievalRequest.fulfilled_at.desc())
                .limit(20)
            )
        )

    def shown(row: RetrievalRequest) -> dict[str, Any]:
        return {
            "id": row.id, "subject": row.subject, "reason": row.reason,
            "requested_by": row.requested_by, "recording_id": row.recording_id,
            "requested_at": as_utc(row.requested_at).astimezone(tz),
            "due_at": as_utc(row.due_at).astimezone(tz),
            "fulfilled_at": as_utc(row.fulfilled_at).astimezone(tz) if row.fulfilled_at else None,
            "fulfilled_by": row.fulfilled_by, "late": is_late(row, now),
        }  # fmt: skip

    return render(
        request, "retrieval.html", status=status, title="Retrieval requests", user=user,
        csrf=csrf, waiting=[shown(r) for r in waiting], answered=[shown(r) for r in answered],
        tz=tz.key, now=now.astimezone(tz), error=error, subject=subject, reason=reason,
    )  # fmt: skip


@router.get("/retrieval")
def retrieval_page(request: Request) -> Response:
    """Open requests, soonest due first; overdue ones marked; forms to file and to fulfil."""
    user, csrf = page_user(request, *EXPORTERS)
    return _queue_view(request, user, csrf)


def _problem_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


@router.post("/retrieval")
def file_request_form(
    request: Request,
    subject: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """File a request from the queue page: the API's logic, due time and audit entry."""
    user, token = page_user(request, *EXPORTERS)
    if csrf != token:
        raise HTTPException(403, "file requests from the console's own form")
    try:
        body = RequestIn(subject=subject.strip(), reason=reason.strip())
    except ValidationError as exc:
        return _queue_view(request, user, token, error=_problem_text(exc), status=422,
                           subject=subject, reason=reason)  # fmt: skip
    create_request(request, body, user)
    return RedirectResponse("/retrieval", status_code=303)


@router.post("/retrieval/{request_id}/fulfil")
def fulfil_request_form(
    request: Request,
    request_id: RowId,
    recording_id: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Answer a request with the recording found: the API's checks (409 twice, 422 unknown id)."""
    user, token = page_user(request, *EXPORTERS)
    if csrf != token:
        raise HTTPException(403, "answer requests from the console's own form")
    try:
        fulfil_request(request, request_id, FulfilIn(recording_id=recording_id.strip()), user)
    except ValidationError:
        return _queue_view(request, user, token, status=422,
                           error="A recording id is 32 hexadecimal characters.")  # fmt: skip
    except HTTPException as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        return _queue_view(request, user, token, error=str(exc.detail), status=exc.status_code)
    return RedirectResponse("/retrieval", status_code=303)


# --- agents: click-to-call --------------------------------------------------------------------


def _sealer(request: Request) -> Sealer:
    secret: bytes | None = getattr(request.app.state, "number_secret", None)
    if not secret:
        raise HTTPException(503, "the number key is not configured, so debtors cannot be shown")
    return Sealer(services_of(request).keys, secret)


def _account_view(request: Request, user: User, sealer: Sealer, debtor: Debtor) -> dict[str, Any]:
    """One account as an agent sees it: masked numbers, each with the dialer's verdict now."""
    services = services_of(request)
    site = call_site(services, sealer.number_secret)
    facts = facts_of(debtor)
    now = services.clock()
    with services.sessions() as session:
        rows = numbers_of(session, debtor)
        numbers = sealer.numbers(debtor, rows)
        target = f"{debtor.client_id}/{debtor.external_id}"
        record(session, user.username, "debtor-view", target, now.astimezone(UTC),
               detail={"name_shown": False, "via": "agent console"})  # fmt: skip
    shown = []
    for row, e164 in zip(rows, numbers, strict=True):
        answer = verdict(site, e164, now, facts)
        shown.append({"id": row.id, "role": row.role, "masked": row.number_masked,
                      "verdict": answer})  # fmt: skip
    return {
        "client": debtor.client_id, "external_id": debtor.external_id, "stage": debtor.stage,
        "timezone": debtor.timezone, "windows": windows_of(debtor), "numbers": shown,
    }  # fmt: skip


def _agent_call_view(
    request: Request,
    user: User,
    csrf: str,
    debtors: list[Debtor],
    looked: bool,
    error: str | None = None,
    status: int = 200,
    client: str = "",
    account: str = "",
    queued: int | None = None,
) -> HTMLResponse:
    services = services_of(request)
    accounts = []
    if debtors:
        sealer = _sealer(request)
        accounts = [_account_view(request, user, sealer, d) for d in debtors]
    with services.sessions() as session:
        requests = list(
            session.scalars(
                select(CallRequest)
                .where(CallRequest.agent == user.username)
                .order_by(CallRequest.id.desc())
                .limit(5)
            )
        )
    return render(
        request, "agent_call.html", status=status, title="Call", user=user, csrf=csrf,
        accounts=accounts, looked=looked, error=error, client=client, account=account,
        requests=requests, queued=queued,
    )  # fmt: skip


@router.get("/agent/call")
def agent_call_page(
    request: Request,
    client: Annotated[str, Query(max_length=64)] = "",
    account: Annotated[str, Query(max_length=100)] = "",
    queued: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    """Look a debtor up by client and account; each number says whether it may be called now."""
    user, csrf = page_user(request, Role.AGENT)
    client, account = client.strip(), account.strip()
    if not (client and account):
        return _agent_call_view(request, user, csrf, [], False, client=client, account=account,
                                queued=queued)  # fmt: skip
    if not (re.match(CLIENT_PATTERN, client) and re.match(EXTERNAL_ID_PATTERN, account)):
        return _agent_call_view(request, user, csrf, [], False, status=422, client=client,
                                account=account, error="No such client or account.")  # fmt: skip
    services = services_of(request)
    with services.sessions() as session:
        found = find(session, client, account)
    return _agent_call_view(request, user, csrf, [found] if found else [], True, client=client,
                            account=account, queued=queued)  # fmt: skip


@router.post("/agent/call/find")
def agent_find_number(
    request: Request,
    number: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Look a debtor up by a number (posted, so it stays out of URLs and the browser's history)."""
    user, token = page_user(request, Role.AGENT)
    if csrf != token:
        raise HTTPException(403, "look numbers up from the console's own form")
    services = services_of(request)
    sealer = _sealer(request)
    try:
        key = sealer.key_of(normalize(number, services.phone_region))
    except MalformedNumber as exc:
        return _agent_call_view(request, user, token, [], False, error=str(exc), status=422)
    with services.sessions() as session:
        found = list(
            session.scalars(
                select(Debtor)
                .join(DebtorNumber, DebtorNumber.debtor_id == Debtor.id)
                .where(DebtorNumber.number_key == key)
                .order_by(Debtor.client_id, Debtor.external_id)
                .limit(10)
            )
        )
    return _agent_call_view(request, user, token, found, True)


@router.post("/agent/call")
def agent_place_call(
    request: Request,
    number_id: Annotated[int, Form(ge=1, le=MAX_ROW_ID)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """The Call button: the dialer's verdict again, then the API's click-to-call (audited)."""
    user, token = page_user(request, Role.AGENT)
    if csrf != token:
        raise HTTPException(403, "place calls from the console's own button")
    services = services_of(request)
    sealer = _sealer(request)
    with services.sessions() as session:
        row = session.get(DebtorNumber, number_id)
        debtor = session.get(Debtor, row.debtor_id) if row is not None else None
        if row is None or debtor is None:
            raise HTTPException(404, f"no number {number_id}")
        (e164,) = sealer.numbers(debtor, [row])
    facts = facts_of(debtor)
    site = call_site(services, sealer.number_secret)
    answer = verdict(site, e164, services.clock(), facts)
    back = {"client": debtor.client_id, "account": debtor.external_id}
    if not answer.allowed:
        return _agent_call_view(request, user, token, [debtor], True, status=409,
                                error=f"Not called: {answer.reason}", client=debtor.client_id,
                                account=debtor.external_id)  # fmt: skip
    # The request names the debtor, so the dialer applies the same lists, zone and windows.
    body = CallIn(agent=user.username, number=e164, debtor_id=facts.debtor_id,
                  client=facts.client_id)  # fmt: skip
    try:
        queued = click_to_call(request, body, user)
    except HTTPException as exc:
        if exc.status_code not in (409, 422):
            raise
        return _agent_call_view(request, user, token, [debtor], True, status=exc.status_code,
                                error=str(exc.detail), client=debtor.client_id,
                                account=debtor.external_id)  # fmt: skip
    return RedirectResponse(
        "/agent/call?" + urlencode({**back, "queued": queued.id}), status_code=303
    )

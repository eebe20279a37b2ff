"""The web console: server-rendered pages for QA staff, supervisors, auditors and agents.

No front-end build: Jinja templates and a few lines of script on the call
page (the transcript follows the player; a click seeks). Pages use the same
role rules and audit log as the API: a search from the console is audited
like one from a script, and the player pulls audio from the audited API.
"""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from api.audit import record
from api.models import Role, User
from api.qa_routes import step_flag
from api.services import Services
from api.web_sessions import COOKIE, LIFETIME, LoginRefused, log_in, log_out, session_user
from dialer.models import CallAttempt
from qa_scoring.models import QaFlag
from recording.models import Recording, RecordingStatus
from transcribe.models import SegmentRow, TranscriptRow
from transcribe.search import SearchError, SearchQuery, search
from transcribe.stats import keep_up

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(resources.files("api").joinpath("templates")))

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
_NAME = r"^[A-Za-z0-9._@-]{1,64}$"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _who(request: Request) -> tuple[User, str] | None:
    """(user, CSRF token) of the browser's live session."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    services = _services(request)
    with services.sessions() as session:
        found = session_user(session, token, services.clock())
        if found is None:
            return None
        user, web = found
        session.expunge(user)
        return user, web.csrf


class _LoginNeeded(Exception):
    pass


def _page_user(request: Request, *roles: Role) -> tuple[User, str]:
    who = _who(request)
    if who is None:
        raise _LoginNeeded
    if who[0].role not in roles:
        raise HTTPException(403, f"the {who[0].role.value} role may not open this page")
    return who


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # transcripts are personal data
    return response


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return _render(request, "login.html", title="Log in", user=None, error=None, username="")


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    services = _services(request)
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
            return _render(request, "login.html", status=401, title="Log in", user=None,
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
        services = _services(request)
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
        return _to_login(request)
    return RedirectResponse("/agent" if who[0].role is Role.AGENT else "/search", status_code=303)


@router.get("/search")
def search_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    speaker: Annotated[str, Query(pattern=r"^(agent|debtor)?$")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    try:
        user, csrf = _page_user(request, *READERS)
    except _LoginNeeded:
        return _to_login(request)
    context: dict[str, Any] = {
        "title": "Search", "user": user, "csrf": csrf, "q": q, "agent": agent,
        "speaker": speaker, "hits": [], "searched": False, "error": None, "next_offset": None,
    }  # fmt: skip
    if q.strip() or agent:
        services = _services(request)
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
    return _render(request, "search.html", **context)


@router.get("/calls/{recording_id}")
def call_page(
    request: Request,
    recording_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    t: Annotated[float, Query(ge=0, le=86_400)] = 0.0,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    try:
        user, csrf = _page_user(request, *READERS, Role.AGENT)
    except _LoginNeeded:
        return _to_login(request)
    services = _services(request)
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
        for item in (row, *segments, *flags):
            session.expunge(item)
    audio = f"/api/v1/recordings/{recording_id}/audio?" + urlencode({"reason": reason})
    reason = reason.strip()
    return _render(
        request, "call.html", title=f"Call {row.call_id}", user=user, csrf=csrf, recording=row,
        segments=segments, t=t, reason=reason if len(reason) >= 3 else "", audio_url=audio,
        pauses=json.loads(row.pauses_json or "[]"), flags=flags,
        can_review=user.role in (Role.QA, Role.SUPERVISOR),
    )  # fmt: skip


@router.post("/calls/{recording_id}/flags/{flag_id}")
def review_flag_form(
    request: Request,
    recording_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    flag_id: Annotated[int, Path(ge=1)],
    action: Annotated[str, Form(pattern=r"^(confirm|dismiss)$")],
    csrf: Annotated[str, Form(max_length=64)],
    comment: Annotated[str, Form(max_length=1000)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A reviewer's confirm or dismiss from the call page; then back to the same call."""
    try:
        user, token = _page_user(request, Role.QA, Role.SUPERVISOR)
    except _LoginNeeded:
        return _to_login(request)
    if csrf != token:
        raise HTTPException(403, "review from the console's own form")
    flag = step_flag(request, flag_id, action, comment or None, user)
    query = urlencode({"t": f"{flag.start:.1f}", "reason": reason})
    return RedirectResponse(f"/calls/{recording_id}?{query}", status_code=303)


@router.get("/status")
def status_page(request: Request) -> Response:
    """Is everything up, and is transcription keeping up with the calls?"""
    try:
        user, csrf = _page_user(request, Role.SUPERVISOR, Role.ADMIN)
    except _LoginNeeded:
        return _to_login(request)
    services = _services(request)
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
    return _render(
        request, "status.html", title="Status", user=user, csrf=csrf, components=components,
        keep=keeping, waiting=waiting or 0, placed=placed, answered=answered, refused=refused,
    )  # fmt: skip


@router.get("/agent")
def agent_page(request: Request) -> Response:
    try:
        user, csrf = _page_user(request, Role.AGENT)
    except _LoginNeeded:
        return _to_login(request)
    services = _services(request)
    with services.sessions() as session:
        calls = list(
            session.scalars(
                select(CallAttempt)
                .where(CallAttempt.agent == user.username)
                .order_by(CallAttempt.started_at.desc())
                .limit(200)
            )
        )
        for call in calls:
            session.expunge(call)
    return _render(request, "agent.html", title="My calls", user=user, csrf=csrf, calls=calls)

"""Console pages for supervisors: the status page, the recordings finder, the retrieval queue.

The finder and the queue use the API's own logic (`api.routes.recordings`,
`api.routes.retrieval`), so a search or an answer from here is scoped and
audited exactly as one from a script. QA staff and auditors may use the
finder too; the queue is for those who may export a recording.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from api.accounts.models import Role, User
from api.console.common import EXPORTERS, NAME_PATTERN, READERS, form_user, page_user, render
from api.console.edge_status import edge_status
from api.i18n import N_, gettext, translate
from api.recordings.finder import MAX_LIMIT as MAX_RECORDINGS
from api.recordings.retrieval import RetrievalRequest, is_late
from api.routes.recordings import NUMBER_PATTERN, recordings_for
from api.routes.retrieval import FulfilIn, RequestIn, create_request, fulfil_request
from api.web.params import RowId
from api.web.problems import localised
from api.web.services import services_of
from dialer.debtors import EXTERNAL_ID_PATTERN
from dialer.models import CallAttempt
from recording.db.engine import as_utc
from recording.models import Recording, RecordingStatus
from transcribe.stats import keep_up

router = APIRouter(include_in_schema=False)


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
        request,
        "status.html",
        title=gettext("Status"),
        user=user,
        csrf=csrf,
        components=components,
        keep=keeping,
        waiting=waiting or 0,
        placed=placed,
        answered=answered,
        refused=refused,
        # What `dialguard up` started on the SIP side (api/cli/supervisor.py DialerPlan):
        # the pool and what it rests on, and the carrier (the test carrier, marked).
        dialer=[
            (gettext(line.what), translate(line.how, **line.params), line.alarm)
            for line in getattr(request.app.state, "dialer_status", None) or []
        ],
        edge=edge_status(request.app.state),
    )


# --- recordings -------------------------------------------------------------------------------

_DAY = r"^(\d{4}-\d{2}-\d{2})?$"


def _day_start(day: str, tz: ZoneInfo, after: bool = False) -> datetime | None:
    """The first instant of `day` (YYYY-MM-DD) in the site's zone; of the next day if `after`."""
    if not day:
        return None
    try:
        start = date.fromisoformat(day) + timedelta(days=1 if after else 0)
    except (ValueError, OverflowError):
        raise HTTPException(422, translate("%(day)s is not a date (YYYY-MM-DD)", day=day)) from None
    return datetime.combine(start, time(0), tzinfo=tz)


_FIELDS = {
    "agent": N_("that agent holds characters it cannot have"),
    "number": N_("that number holds characters it cannot have"),
    "client": N_("that client holds characters it cannot have"),
    "case": N_("that case holds characters it cannot have"),
}


def _search_field(value: str, pattern: str, what: str) -> str | None:
    """A filled-in search field as the API takes it: None if empty, 422 if malformed."""
    if not value:
        return None
    if not re.match(pattern, value):
        raise HTTPException(422, gettext(_FIELDS[what]))
    return value


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
    form = {
        "case": case.strip(),
        "debtor": debtor.strip(),
        "agent": agent.strip(),
        "client": client.strip(),
        "from": day_from,
        "to": day_to,
    }
    context: dict[str, Any] = {
        "title": gettext("Recordings"),
        "user": user,
        "csrf": csrf,
        "form": form,
        "found": [],
        "searched": False,
        "error": None,
        "next_url": None,
        "tz": services.working_day.tz.key,
    }
    if any(form.values()):
        tz = services.working_day.tz
        try:
            page = recordings_for(
                request,
                user,
                agent=_search_field(form["agent"], NAME_PATTERN, "agent"),
                debtor=_search_field(form["debtor"], NUMBER_PATTERN, "number"),
                client=_search_field(form["client"], NAME_PATTERN, "client"),
                case=_search_field(form["case"], EXTERNAL_ID_PATTERN, "case"),
                date_from=_day_start(day_from, tz),
                date_to=_day_start(day_to, tz, after=True),
                cursor=cursor or None,
                limit=50,
                via="console",
            )
        except HTTPException as exc:
            if exc.status_code not in (422, 503):
                raise
            context["error"] = localised(str(exc.detail))
        else:
            context["found"] = page.recordings
            context["searched"] = True
            context["exports"] = _export_urls(form, tz)
            if page.next_cursor:
                context["next_url"] = "/recordings?" + urlencode(
                    {**{k: v for k, v in form.items() if v}, "cursor": page.next_cursor}
                )
    status = 422 if context["error"] else 200
    return render(request, "recordings.html", status=status, **context)


def _export_urls(form: dict[str, str], tz: ZoneInfo) -> dict[str, str]:
    """The Export buttons: the API's own exports of what the form found (audited there), so a
    file holds what the page shows; days become the site's midnights, as the search took them."""
    start = _day_start(form["from"], tz)
    end = _day_start(form["to"], tz, after=True)
    bounds = {
        "from": start.isoformat() if start else "",
        "to": end.isoformat() if end else "",
    }
    found = {
        "agent": form["agent"],
        "debtor": form["debtor"],
        "client": form["client"],
        "case": form["case"],
        **bounds,
    }
    scores = {"agent": form["agent"], **bounds}
    urls: dict[str, str] = {}
    for fmt in ("xlsx", "csv"):
        chosen = {k: v for k, v in found.items() if v}
        urls[f"recordings_{fmt}"] = "/api/v1/recordings?" + urlencode(
            {**chosen, "limit": MAX_RECORDINGS, "format": fmt}
        )
        urls[f"scores_{fmt}"] = "/api/v1/qa/scores?" + urlencode(
            {**{k: v for k, v in scores.items() if v}, "format": fmt}
        )
    return urls


# --- retrieval requests -----------------------------------------------------------------------


def _queue_view(
    request: Request,
    user: User,
    csrf: str,
    error: str | None = None,
    status: int = 200,
    subject: str = "",
    reason: str = "",
) -> HTMLResponse:
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
            "id": row.id,
            "subject": row.subject,
            "reason": row.reason,
            "requested_by": row.requested_by,
            "recording_id": row.recording_id,
            "requested_at": as_utc(row.requested_at).astimezone(tz),
            "due_at": as_utc(row.due_at).astimezone(tz),
            "fulfilled_at": as_utc(row.fulfilled_at).astimezone(tz) if row.fulfilled_at else None,
            "fulfilled_by": row.fulfilled_by,
            "late": is_late(row, now),
        }

    return render(
        request,
        "retrieval.html",
        status=status,
        title=gettext("Retrieval requests"),
        user=user,
        csrf=csrf,
        waiting=[shown(r) for r in waiting],
        answered=[shown(r) for r in answered],
        tz=tz.key,
        now=now.astimezone(tz),
        error=error,
        subject=subject,
        reason=reason,
    )


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
    refusal = N_("file requests from the console's own form")
    user, token = form_user(request, csrf, *EXPORTERS, refusal=refusal)
    try:
        body = RequestIn(subject=subject.strip(), reason=reason.strip())
    except ValidationError as exc:
        return _queue_view(
            request,
            user,
            token,
            error=_problem_text(exc),
            status=422,
            subject=subject,
            reason=reason,
        )
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
    refusal = N_("answer requests from the console's own form")
    user, token = form_user(request, csrf, *EXPORTERS, refusal=refusal)
    try:
        fulfil_request(request, request_id, FulfilIn(recording_id=recording_id.strip()), user)
    except ValidationError:
        malformed = gettext("A recording id is 32 hexadecimal characters.")
        return _queue_view(request, user, token, error=malformed, status=422)
    except HTTPException as exc:
        if exc.status_code not in (404, 409, 422):
            raise
        shown = localised(str(exc.detail))
        return _queue_view(request, user, token, error=shown, status=exc.status_code)
    return RedirectResponse("/retrieval", status_code=303)

"""Console pages for QA staff and auditors: transcript search, the call page, and the forms on it.

The call page plays a call from the audited audio API with its transcript
and the QA flags beside it; QA staff and supervisors confirm or dismiss a
flag there, supervisors and admins place or lift a legal hold. An agent
opens their own calls here too (from the agent page); an auditor only their
client's.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from api.accounts.models import Role, User
from api.audit.chain import audit_to, record
from api.console.common import EXPORTERS, NAME_PATTERN, READERS, form_user, page_user, render
from api.i18n import N_, gettext, translate
from api.recordings.access import may_download, may_see
from api.routes.qa import FlagSort, flag_order, step_flag
from api.web.params import RowId, text_problem
from api.web.problems import localised
from api.web.services import services_of
from qa_scoring.models import QaFlag, QaResult
from recording.errors import RecordingError
from recording.lifecycle import set_legal_hold
from recording.models import Recording
from recording.store import RecordingNotFound
from transcribe.models import SegmentRow, TranscriptRow
from transcribe.redact import mask_numbers
from transcribe.search import SearchError, SearchQuery, search

router = APIRouter(include_in_schema=False)

RecordingId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.get("/search")
def search_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    agent: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    speaker: Annotated[str, Query(pattern=r"^(agent|debtor)?$")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    user, csrf = page_user(request, *READERS)
    context: dict[str, Any] = {
        "title": gettext("Search"),
        "user": user,
        "csrf": csrf,
        "q": q,
        "agent": agent,
        "speaker": speaker,
        "hits": [],
        "searched": False,
        "error": None,
        "next_offset": None,
    }
    if q.strip() or agent:
        services = services_of(request)
        client = user.client_id if user.role is Role.AUDITOR else None
        if user.role is Role.AUDITOR and client is None:
            raise HTTPException(403, gettext("this auditor account is not assigned to a client"))
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
                context["error"] = localised(str(exc))
            else:
                detail = {"agent": agent, "speaker": speaker, "via": "console"}
                shown = mask_numbers(q)  # a number searched for stays masked in the audit log
                record(session, user.username, "search", shown, services.clock(), detail=detail)
                context["hits"] = page.hits
                context["searched"] = True
                if page.has_more:
                    more = offset + page.limit
                    context["next_offset"] = more
                    context["next_url"] = "/search?" + urlencode(
                        {"q": q, "agent": agent or "", "speaker": speaker, "offset": more}
                    )
    return render(request, "search.html", **context)


@router.get("/calls/{recording_id}")
def call_page(
    request: Request,
    recording_id: RecordingId,
    t: Annotated[float, Query(ge=0, le=86_400)] = 0.0,
    reason: Annotated[str, Query(max_length=500)] = "",
    sort: Annotated[FlagSort, Query()] = "time",
) -> Response:
    user, csrf = page_user(request, *READERS, Role.AGENT)
    return _call_view(request, user, csrf, recording_id, t, reason, sort=sort)


def _call_view(
    request: Request,
    user: User,
    csrf: str,
    recording_id: str,
    t: float,
    reason: str,
    error: str | None = None,
    status: int = 200,
    sort: FlagSort = "time",
) -> Response:
    services = services_of(request)
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        if row is None or not may_see(user, row):
            raise HTTPException(404, translate("no recording %(id)s", id=recording_id))
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
                select(QaFlag)
                .where(QaFlag.recording_id == recording_id)
                .order_by(*flag_order(sort))
            )
        )
        scored = session.scalar(
            select(QaResult.id).where(QaResult.recording_id == recording_id).limit(1)
        )
    # the API's export of this call's QA result (agents export nothing), audited there
    qa_exports = (
        {
            fmt: f"/api/v1/qa/calls/{recording_id}?" + urlencode({"sort": sort, "format": fmt})
            for fmt in ("xlsx", "csv")
        }
        if scored is not None and user.role in READERS
        else None
    )
    reason = reason.strip()
    playable = text_problem(reason) is None
    # one playback id per page view: the player's many Range requests are audited once
    playback = secrets.token_urlsafe(16)
    audio = f"/api/v1/recordings/{recording_id}/audio?" + urlencode(
        {"reason": reason, "playback": playback}
    )
    return render(
        request,
        "call.html",
        status=status,
        title=translate("Call %(call)s", call=row.call_id),
        user=user,
        csrf=csrf,
        recording=row,
        segments=segments,
        t=t,
        reason=reason if playable else "",
        reason_error=text_problem(reason) if reason and not playable else None,
        audio_url=audio,
        pauses=json.loads(row.pauses_json or "[]"),
        flags=flags,
        qa_exports=qa_exports,
        sort=sort,
        can_review=user.role in (Role.QA, Role.SUPERVISOR),
        can_download=may_download(user),
        can_hold=user.role in EXPORTERS,
        error=error,
    )


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
    refusal = N_("change a legal hold from the console's own form")
    user, token = form_user(request, csrf, *EXPORTERS, refusal=refusal)
    why = text_problem(reason)
    if why is not None:
        missing = translate("Say why the hold is placed or lifted: the reason %(why)s.", why=why)
        return _call_view(request, user, token, recording_id, 0.0, listening, missing, 422)
    services = services_of(request)
    audit = audit_to(services.sessions, services.clock)
    try:
        set_legal_hold(
            services.sessions,
            services.copies,
            recording_id,
            on,
            user.username,
            reason.strip(),
            audit,
        )
    except RecordingNotFound:
        raise HTTPException(404, translate("no recording %(id)s", id=recording_id)) from None
    except RecordingError as exc:
        shown = gettext(str(exc))  # the hold's refusals name no data: whole messages
        return _call_view(request, user, token, recording_id, 0.0, listening, shown, 409)
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
    refusal = N_("review from the console's own form")
    user, _ = form_user(request, csrf, Role.QA, Role.SUPERVISOR, refusal=refusal)
    flag = step_flag(request, flag_id, action, comment or None, user)
    query = urlencode({"t": f"{flag.start:.1f}", "reason": reason})
    return RedirectResponse(f"/calls/{recording_id}?{query}", status_code=303)

"""Console pages for agents: their own calls, and click-to-call.

An agent looks a debtor up by client and account (or by a number, posted so
it stays out of URLs) and sees each number masked, with the dialer's verdict
for it now: the same lists, zone, windows and caps the dialer applies when
the Call button queues the call through the audited click-to-call API.
Agents' pages block copy, paste and export in the templates.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from api.accounts.models import Role, User
from api.audit.chain import record
from api.console.common import form_user, page_user, render
from api.i18n import N_, gettext, translate
from api.import_messages import say
from api.reasons import refusal_text
from api.routes.calls import CallIn, click_to_call
from api.web.call_check import call_site, facts_of
from api.web.params import MAX_ROW_ID
from api.web.problems import localised
from api.web.services import services_of
from dialer.debtors import (
    CLIENT_PATTERN,
    EXTERNAL_ID_PATTERN,
    Debtor,
    DebtorNumber,
    Sealer,
    find,
    numbers_of,
    windows_of,
)
from dialer.decision import site_policy, verdict
from dialer.models import CallAttempt, CallRequest
from dialer.numbers import MalformedNumber, normalize

router = APIRouter(include_in_schema=False)


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
    return render(
        request, "agent.html", title=gettext("My calls"), user=user, csrf=csrf, calls=calls
    )


# --- click-to-call ----------------------------------------------------------------------------


def _sealer(request: Request) -> Sealer:
    services = services_of(request)
    if not services.number_secret:
        raise HTTPException(
            503, gettext("the number key is not configured, so debtors cannot be shown")
        )
    return Sealer(services.keys, services.number_secret)


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
        detail = {"name_shown": False, "via": "agent console"}
        record(session, user.username, "debtor-view", target, now.astimezone(UTC), detail=detail)
        policy, _calendar = site_policy(session, site.policy, site.calendar)
    shown = []
    for row, e164 in zip(rows, numbers, strict=True):
        answer = verdict(site, e164, now, facts)
        reason = refusal_text(answer.rule, answer.reason, answer.next_at, now, policy)
        shown.append(
            {
                "id": row.id,
                "role": row.role,
                "masked": row.number_masked,
                "verdict": answer,
                "reason": reason,
            }
        )
    return {
        "client": debtor.client_id,
        "external_id": debtor.external_id,
        "stage": debtor.stage,
        "timezone": debtor.timezone,
        "windows": windows_of(debtor),
        "numbers": shown,
    }


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
        request,
        "agent_call.html",
        status=status,
        title=gettext("Call"),
        user=user,
        csrf=csrf,
        accounts=accounts,
        looked=looked,
        error=error,
        client=client,
        account=account,
        requests=requests,
        queued=queued,
    )


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
        return _agent_call_view(
            request, user, csrf, [], False, client=client, account=account, queued=queued
        )
    if not (re.match(CLIENT_PATTERN, client) and re.match(EXTERNAL_ID_PATTERN, account)):
        unknown = gettext("No such client or account.")
        return _agent_call_view(
            request, user, csrf, [], False, unknown, 422, client=client, account=account
        )
    services = services_of(request)
    with services.sessions() as session:
        found = find(session, client, account)
    debtors = [found] if found else []
    return _agent_call_view(
        request, user, csrf, debtors, True, client=client, account=account, queued=queued
    )


@router.post("/agent/call/find")
def agent_find_number(
    request: Request,
    number: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Look a debtor up by a number (posted, so it stays out of URLs and the browser's history)."""
    refusal = N_("look numbers up from the console's own form")
    user, token = form_user(request, csrf, Role.AGENT, refusal=refusal)
    services = services_of(request)
    sealer = _sealer(request)
    try:
        key = sealer.key_of(
            normalize(number, services.phone_region, allow_vanity=services.allow_vanity_numbers)
        )
    except MalformedNumber as exc:
        shown = say(exc.said)
        return _agent_call_view(request, user, token, [], False, error=shown, status=422)
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
    refusal = N_("place calls from the console's own button")
    user, token = form_user(request, csrf, Role.AGENT, refusal=refusal)
    services = services_of(request)
    sealer = _sealer(request)
    with services.sessions() as session:
        row = session.get(DebtorNumber, number_id)
        debtor = session.get(Debtor, row.debtor_id) if row is not None else None
        if row is None or debtor is None:
            raise HTTPException(404, translate("no number %(id)s", id=number_id))
        (e164,) = sealer.numbers(debtor, [row])
    facts = facts_of(debtor)
    site = call_site(services, sealer.number_secret)
    now = services.clock()
    answer = verdict(site, e164, now, facts)
    client, account = debtor.client_id, debtor.external_id
    if not answer.allowed:
        with services.sessions() as session:
            policy, _calendar = site_policy(session, site.policy, site.calendar)
        why = refusal_text(answer.rule, answer.reason, answer.next_at, now, policy)
        refused = translate("Not called: %(why)s", why=why)
        return _agent_call_view(
            request, user, token, [debtor], True, refused, 409, client=client, account=account
        )
    # The request names the debtor, so the dialer applies the same lists, zone and windows.
    body = CallIn(
        agent=user.username, number=e164, debtor_id=facts.debtor_id, client=facts.client_id
    )
    try:
        queued = click_to_call(request, body, user)
    except HTTPException as exc:
        if exc.status_code not in (409, 422):
            raise
        return _agent_call_view(
            request,
            user,
            token,
            [debtor],
            True,
            localised(str(exc.detail)),
            exc.status_code,
            client=client,
            account=account,
        )
    back = {"client": client, "account": account, "queued": queued.id}
    return RedirectResponse("/agent/call?" + urlencode(back), status_code=303)

"""The console pages for supervisors: status, finding recordings (page and API), retrievals."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from api.accounts.models import User
from api.accounts.totp import code_at
from api.audit.chain import AuditEntry
from api.web.auth import issue_token
from dialer.models import CallAttempt
from dialer.numbers import mask, normalize
from tests.api.console_site import (
    Console,
    add_accounts,
    csrf_of,
    key,
)
from tests.factories import T0, add_recording


def test_status_page_shows_keep_up_and_calls(console: Console) -> None:
    assert console.logged_in("qa1").get("/status").status_code == 403
    secret = console.enroll("sup1")
    page = console.logged_in("sup1", code_at(secret, time.time())).get("/status")
    assert page.status_code == 200
    assert "Keep-up ratio (last 24 h)" in page.text and "Backlog: 0 recordings" in page.text
    assert re.search(r"<td>database</td><td>ok</td>", page.text), page.text


def _called(console: Console, number: str, recording_id: str, at: datetime) -> None:
    """A call the dialer placed to `number` and recorded: booked by keyed hash only."""
    with console.services.sessions() as session:
        session.add(
            CallAttempt(
                call_id=f"c-{recording_id[:8]}",
                sip_call_id="s",
                agent="agent7",
                number_key=key(number),
                number_masked=mask(normalize(number, "CN")),
                started_at=at,
                placed=True,
                answered=True,
                duration_s=60.0,
                sip_status=200,
                sip_reason="OK",
                ended_by="agent",
                recording_id=recording_id,
            )
        )
        session.commit()


def _ids(page: str) -> list[str]:
    return re.findall(r'href="/calls/([0-9a-f]{32})"', page)


def test_recordings_page_finds_by_case_debtor_agent_client_and_day(console: Console) -> None:
    add_accounts(console)
    day = timedelta(days=1)
    with console.services.sessions() as session:
        first = console.recording.id  # agent7, bank-a, tagged D-1, T0
        tagged = add_recording(session, "agent9", "ACC-1", T0 + day, "bank-a").id
        dialed = add_recording(session, "agent7", None, T0 + 2 * day, None).id
        other = add_recording(session, "agent9", "ACC-9", T0 - 3 * day, "bank-b").id
    _called(console, "13900139000", dialed, T0 + 2 * day)  # ACC-1's relative, by the dialer
    qa = console.logged_in("qa1")

    def found(**params: str) -> list[str]:
        page = qa.get("/recordings", params=params)
        assert page.status_code == 200, page.text
        return _ids(page.text)

    assert found(case="ACC-1") == [dialed, tagged]  # newest first; the dialed one by its number
    assert found(case="ACC-1", client="bank-b") == []
    assert found(debtor="139 0013 9000") == [dialed, tagged]  # the number's account's too
    assert found(debtor="+8613600136000") == [other]
    assert found(debtor="13500135000") == []  # on no account, never dialed
    assert found(agent="agent7") == [dialed, first]
    assert found(client="bank-a") == [dialed, tagged, first]
    assert found(**{"from": "2026-11-25", "to": "2026-11-25"}) == [tagged]  # Shanghai days
    assert found(agent="agent9", to="2026-11-24") == [other]
    assert "open call-" in qa.get("/recordings", params={"case": "ACC-1"}).text
    bad = qa.get("/recordings", params={"debtor": "1234"})
    assert bad.status_code == 422 and "is not a valid number" in bad.text
    assert "holds characters" in qa.get("/recordings", params={"debtor": "12; --"}).text
    assert qa.get("/recordings", params={"agent": "../etc"}).status_code == 422
    assert "<script>" not in qa.get("/recordings", params={"case": "<script>"}).text

    auditor = console.logged_in("aud-b")  # bank-b's: tagged recordings of bank-b only
    assert _ids(auditor.get("/recordings", params={"case": "ACC-1"}).text) == []
    assert _ids(auditor.get("/recordings", params={"agent": "agent9"}).text) == [other]
    assert console.logged_in("agent7").get("/recordings?case=ACC-1").status_code == 403
    assert console.browser().get("/recordings").headers["location"].startswith("/login")

    with console.services.sessions() as session:
        searches = list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == "recording-search"))
        )
    assert [e.actor for e in searches].count("qa1") == 10  # the 10 valid ones
    by_number = [e for e in searches if "+86139****9000" in e.target]
    assert by_number and all("13900139000" not in e.target + e.detail for e in searches)
    assert '"via":"console"' in by_number[0].detail and '"results":2' in by_number[0].detail


def test_recordings_api_pages_and_scopes(console: Console) -> None:
    add_accounts(console)
    with console.services.sessions() as session:
        for n in range(4):
            add_recording(session, "agent9", f"ACC-{n}", T0 + timedelta(minutes=n), "bank-b")
        tokens = {}
        for name in ("qa1", "agent7", "aud-b"):
            user = session.scalar(select(User).where(User.username == name))
            assert user is not None
            tokens[name] = issue_token(session, user, "test", T0)
    api = console.browser()

    def get(who: str, **params: Any) -> Any:
        return api.get(
            "/api/v1/recordings", params=params, headers={"Authorization": f"Bearer {tokens[who]}"}
        )

    everything = [r["id"] for r in get("qa1", limit=50).json()["recordings"]]
    assert len(everything) == 5
    paged: list[str] = []
    cursor = None
    while True:
        body = get("qa1", limit=2, **({"cursor": cursor} if cursor else {})).json()
        paged += [r["id"] for r in body["recordings"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == everything  # newest first, none twice, none left out
    assert get("qa1", cursor="bm90IG91cnM").status_code == 422
    assert get("qa1", **{"from": "2026-11-24T09:00:00"}).status_code == 422  # needs an offset
    window = get("qa1", **{"from": "2026-11-24T09:01:00+00:00", "to": "2026-11-24T17:03:00+08:00"})
    assert [r["debtor_id"] for r in window.json()["recordings"]] == ["ACC-2", "ACC-1"]
    mine = get("agent7").json()["recordings"]
    assert [r["id"] for r in mine] == [console.recording.id]
    assert get("agent7", agent="agent9").status_code == 403
    assert get("aud-b", client="bank-a").status_code == 403
    assert len(get("aud-b").json()["recordings"]) == 4
    assert get("qa1", debtor="not a number").status_code == 422


def _subjects(page: str) -> list[tuple[str, bool]]:
    """(subject, overdue) of each open request, in the order shown."""
    rows = re.findall(r'<tr class="request( overdue)?" data-id="\d+">.*?<td>([^<]+) <a', page, re.S)
    return [(subject, bool(late)) for late, subject in rows]


def test_retrieval_queue_soonest_due_first_with_overdue_marked(console: Console) -> None:
    with console.services.sessions() as session:
        user = session.scalar(select(User).where(User.username == "sup1"))
        assert user is not None
        token = issue_token(session, user, "test", T0)
    api = console.browser()
    shanghai = ZoneInfo("Asia/Shanghai")
    for subject, at in (
        ("CASE-WED", datetime(2026, 11, 24, 19, 0, tzinfo=shanghai)),  # after hours: Wednesday
        ("CASE-MON", datetime(2026, 11, 23, 10, 0, tzinfo=shanghai)),  # due Monday 18:00
    ):
        console.clock.now = at
        body = {"subject": subject, "reason": "bank asks"}
        filed = api.post(
            "/api/v1/retrieval-requests", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert filed.status_code == 201, filed.text
    console.clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=shanghai)
    sup = console.supervisor()
    page = sup.get("/retrieval").text
    csrf = csrf_of(page)
    bad = sup.post("/retrieval", data={"csrf": csrf, "subject": "no spaces please", "reason": "x"})
    assert bad.status_code == 422 and "subject" in bad.text
    filed = sup.post(
        "/retrieval", data={"csrf": csrf, "subject": "CASE-TUE", "reason": "complaint 4411"}
    )
    assert filed.status_code == 303
    console.clock.now = datetime(2026, 11, 24, 17, 30, tzinfo=shanghai)
    page = sup.get("/retrieval").text
    assert _subjects(page) == [("CASE-MON", True), ("CASE-TUE", False), ("CASE-WED", False)]
    assert "2026-11-24 18:00" in page and "2026-11-25 18:00" in page  # due times, site time
    assert 'href="/recordings?case=CASE-TUE"' in page

    tue = re.search(r'data-id="(\d+)">\s*<td>[^<]*</td>\s*<td>CASE-TUE', page)
    assert tue is not None
    action = f"/retrieval/{tue.group(1)}/fulfil"
    malformed = sup.post(action, data={"csrf": csrf, "recording_id": "nope"})
    assert malformed.status_code == 422 and "32 hexadecimal" in malformed.text
    unknown = sup.post(action, data={"csrf": csrf, "recording_id": "f" * 32})
    assert unknown.status_code == 422 and "no recording" in unknown.text
    assert (
        sup.post(action, data={"csrf": "forged", "recording_id": console.recording.id}).status_code
        == 403
    )
    done = sup.post(action, data={"csrf": csrf, "recording_id": console.recording.id})
    assert done.status_code == 303
    page = sup.get("/retrieval").text
    assert _subjects(page) == [("CASE-MON", True), ("CASE-WED", False)]
    assert f'href="/calls/{console.recording.id}"' in page  # answered lately, not late
    twice = sup.post(action, data={"csrf": csrf, "recording_id": console.recording.id})
    assert twice.status_code == 409 and "was answered by sup1" in twice.text
    actions = console.actions()
    assert ("sup1", "retrieval-request") in actions and ("sup1", "retrieval-fulfil") in actions
    assert console.logged_in("qa1").get("/retrieval").status_code == 403
    assert console.logged_in("agent7").get("/retrieval").status_code == 403

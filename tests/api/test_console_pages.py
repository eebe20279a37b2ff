"""The web console over HTTP: login with lockout, search page, call page, agent page."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.models import User
from api.accounts.sessions import COOKIE, enroll_totp
from api.accounts.totp import code_at
from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.web.auth import issue_token
from api.web.call_check import call_site
from api.web.services import Services
from dialer.debtors.records import DebtorNumber, Sealer, upsert, validate_row
from dialer.dnc import DncRow, Scope, add_entries
from dialer.models import CallAttempt, CallRequest, NumberStatusEvent, SipRegistration
from dialer.numbers import mask, normalize
from dialer.service import number_key, policy_decider
from qa_scoring.store import score_transcript
from recording.models import Recording
from recording.store import CallInfo, spool_call, upload_pending
from tests.apps import make_app
from tests.audio import noise, write_wav
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import TranscriptRow

PASSWORD = "a long passphrase"
SECRET = b"console number key 32 bytes long"


class Clock:
    """The console's clock: real time until a test sets `now`."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


class Console:
    def __init__(self, services: Services, engine: Engine) -> None:
        self.clock = Clock()
        services = replace(services, clock=self.clock)
        self.services = services
        self.app = make_app(services, engine)
        self.app.state.number_secret = SECRET
        with services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("agent7", "agent", None),
                ("aud-b", "auditor", "bank-b"),
                ("sup1", "supervisor", None),
            ):
                user = create_user(session, name, role, PASSWORD, T0)
                user.client_id = client
                session.commit()
            self.recording = add_recording(session, agent="agent7", client_id="bank-a")
            self.recording.pauses_json = "[[12.0, 41.5]]"  # card details read out here
            add_transcript(
                session,
                self.recording.id,
                [("agent", 0.5, "您好，我是信用卡中心的客服。"), ("debtor", 65.0, "我下周还款。")],
            )
            session.add(
                CallAttempt(
                    call_id="c1", sip_call_id="s1", agent="agent7", number_key="k",
                    number_masked="+86138****8000", started_at=T0, placed=True, answered=True,
                    duration_s=75.0, sip_status=200, sip_reason="OK", ended_by="agent",
                )
            )  # fmt: skip
            session.commit()

    def browser(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def logged_in(self, username: str, code: str = "") -> TestClient:
        client = self.browser()
        form = {"username": username, "password": PASSWORD, "code": code}
        answer = client.post("/login", data=form)
        assert answer.status_code == 303, answer.text
        return client

    def enroll(self, username: str) -> str:
        with self.services.sessions() as session:
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None
            return enroll_totp(session, user, self.services.keys)

    def supervisor(self, username: str = "sup1") -> TestClient:
        """A supervisor logged in with password and a one-time code of the console's clock."""
        secret = self.enroll(username)
        return self.logged_in(username, code_at(secret, self.clock().timestamp()))

    def actions(self) -> list[tuple[str, str]]:
        with self.services.sessions() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            return [(e.actor, e.action) for e in rows]


@pytest.fixture
def console(services: Services, engine: Engine) -> Console:
    return Console(services, engine)


def test_login_sets_a_safe_cookie_and_pages_need_it(console: Console) -> None:
    browser = console.browser()
    assert browser.get("/search?q=x").headers["location"].startswith("/login")
    answer = browser.post("/login", data={"username": "qa1", "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert browser.get("/").headers["location"] == "/search"
    page = browser.get("/search")
    assert page.status_code == 200 and "qa1 (qa)" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_wrong_passwords_lock_the_account(console: Console) -> None:
    browser = console.browser()
    for _ in range(5):
        wrong = browser.post("/login", data={"username": "qa1", "password": "not it at all"})
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    locked = browser.post("/login", data={"username": "qa1", "password": PASSWORD})
    assert locked.status_code == 401 and "too many wrong passwords" in locked.text
    unknown = browser.post("/login", data={"username": "nobody", "password": PASSWORD})
    assert "wrong user name or password" in unknown.text  # same words: no user enumeration
    console.services = console.services  # the lock lifts after 15 minutes
    later = console.services.clock() + timedelta(minutes=16)
    app_services = console.app.state.services
    console.app.state.services = type(app_services)(
        **{**vars(app_services), "clock": lambda: later}
    )
    assert (
        console.browser().post("/login", data={"username": "qa1", "password": PASSWORD}).status_code
        == 303
    )
    assert [a for _, a in console.actions()].count("login-failed") == 7


def test_search_page_shows_highlighted_hits_and_audits(console: Console) -> None:
    qa = console.logged_in("qa1")
    page = qa.get("/search", params={"q": "还款"})
    assert page.status_code == 200
    assert "<mark>还款</mark>" in page.text
    link = re.search(r'href="(/calls/[0-9a-f]{32}\?t=65.0)"', page.text)
    assert link is not None, page.text
    assert ("qa1", "search") in console.actions()
    injected = qa.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in injected.text  # escaped, not executed


def test_call_page_asks_a_reason_then_plays_from_the_hit(console: Console) -> None:
    qa = console.logged_in("qa1")
    url = f"/calls/{console.recording.id}"
    ask = qa.get(url, params={"t": 65.0})
    assert 'name="reason"' in ask.text and "<audio" not in ask.text
    page = qa.get(url, params={"t": 65.0, "reason": "QA review week 48"})
    assert '<audio id="player"' in page.text and 'data-start="65.0"' in page.text
    assert f"/api/v1/recordings/{console.recording.id}/audio?reason=QA+review+week+48" in page.text
    assert "我下周还款。" in page.text and 'data-start="65.0" data-end=' in page.text
    assert "Recording paused for card details from 0:12 to 0:41." in page.text


def test_roles_on_pages(console: Console) -> None:
    agent = console.logged_in("agent7")
    assert agent.get("/").headers["location"] == "/agent"
    assert agent.get("/search?q=x").status_code == 403
    mine = agent.get("/agent")
    assert "+86138****8000" in mine.text and 'oncopy="return false"' in mine.text
    auditor = console.logged_in("aud-b")  # another client's auditor
    assert auditor.get(f"/calls/{console.recording.id}").status_code == 404
    assert "<mark>" not in auditor.get("/search", params={"q": "还款"}).text


def test_cookie_reads_api_but_cannot_change_anything(console: Console) -> None:
    qa = console.logged_in("qa1")
    assert qa.get("/api/v1/transcripts/search", params={"q": "还款"}).status_code == 200
    hold: Any = qa.post(
        f"/api/v1/recordings/{console.recording.id}/legal-hold",
        json={"on": True, "reason": "x y z"},
    )
    assert hold.status_code == 401  # a cookie is no credential for a change


def test_logout_needs_the_form_token_and_ends_the_session(console: Console) -> None:
    qa = console.logged_in("qa1")
    assert qa.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert qa.get("/search").status_code == 200  # a forged logout does nothing
    page = qa.get("/search").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    qa.post("/logout", data={"csrf": token.group(1)})
    assert qa.get("/search").status_code == 303


def test_supervisors_need_a_one_time_code(console: Console) -> None:
    browser = console.browser()
    form = {"username": "sup1", "password": PASSWORD}
    refused = browser.post("/login", data=form)
    assert refused.status_code == 401 and "enroll-totp sup1" in refused.text
    secret = console.enroll("sup1")
    now = console.services.clock().timestamp()
    wrong = browser.post("/login", data=form | {"code": "000000"})
    assert wrong.status_code == 401 and "one-time code" in wrong.text
    good = browser.post("/login", data=form | {"code": code_at(secret, now)})
    assert good.status_code == 303
    replay = console.browser().post("/login", data=form | {"code": code_at(secret, now)})
    assert replay.status_code == 401  # a code works once


def test_status_page_shows_keep_up_and_calls(console: Console) -> None:
    assert console.logged_in("qa1").get("/status").status_code == 403
    secret = console.enroll("sup1")
    page = console.logged_in("sup1", code_at(secret, time.time())).get("/status")
    assert page.status_code == 200
    assert "Keep-up ratio (last 24 h)" in page.text and "Backlog: 0 recordings" in page.text
    assert re.search(r"<td>database</td><td>ok</td>", page.text), page.text


def test_qa_flow_search_open_call_seek_to_flag_and_confirm(console: Console) -> None:
    """Search, open the call, find the flag's marker at its second, confirm it."""
    with console.services.sessions() as session:
        call = add_recording(session, agent="agent7", client_id="bank-a")
        add_transcript(session, call.id, [
            ("agent", 1.0, "您好，我是安信资产的催收员小王"),
            ("agent", 10.0, "再不还就让你坐牢"),
        ])  # fmt: skip
        transcript = session.scalar(select(TranscriptRow.id).where(
            TranscriptRow.recording_id == call.id))  # fmt: skip
        assert transcript is not None
        score_transcript(session, transcript, "cn-collections", T0)
    qa = console.logged_in("qa1")
    hits = qa.get("/search", params={"q": "坐牢"}).text
    assert f'href="/calls/{call.id}?t=10.0"' in hits
    page = qa.get(f"/calls/{call.id}", params={"t": 10.0, "reason": "weekly QA"}).text
    marker = re.search(r'<a href="#" class="seek" data-start="10.0">0:10</a>', page)
    assert marker is not None, page  # the flag's marker seeks the player to 0:10
    form = re.search(r'action="(/calls/[0-9a-f]+/flags/(\d+))"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert form is not None and csrf is not None
    done = qa.post(form.group(1), data={"csrf": csrf.group(1), "action": "confirm",
                                        "reason": "weekly QA"})  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].startswith(
        f"/calls/{call.id}?t=10.0"
    )
    again = qa.get(done.headers["location"]).text
    assert '<td class="state">confirmed</td>' in again and "Confirm</button>" not in again
    assert ("qa1", "qa-flag-confirm") in console.actions()
    forged = qa.post(form.group(1), data={"csrf": "forged", "action": "dismiss"})
    assert forged.status_code == 403


# --- supervisors: recordings, download, legal hold, retrieval queue; agents: click-to-call --


def _key(number: str) -> str:
    return number_key(SECRET, normalize(number, "CN"))


ACC_1 = {  # bank-a/ACC-1, in Shanghai: one number per role, and a relative in Chicago
    "13800138000": "debtor",
    "13900139000": "relative",
    "13700137000": "emergency",
    "+13125550100": "relative",
}


def _accounts(console: Console) -> dict[str, int]:
    """bank-a/ACC-1 (Shanghai), bank-a/ACC-7 (New York) and bank-b/ACC-9 (Shanghai).

    Returns the number rows' ids by masked number.
    """
    rows = []
    for raw in (
        {"client": "bank-a", "external_id": "ACC-1", "name": "王小明", "stage": "early",
         "timezone": "Asia/Shanghai", "callback_windows": "Mon-Fri 18:00-20:00",
         "numbers": ";".join(f"{role}:{number}" for number, role in ACC_1.items())},
        {"client": "bank-a", "external_id": "ACC-7", "name": "John Doe", "stage": "early",
         "timezone": "America/New_York", "numbers": "employer:+12127365000"},
        {"client": "bank-b", "external_id": "ACC-9", "name": "李四", "stage": "late",
         "timezone": "Asia/Shanghai", "numbers": "debtor:13600136000"},
    ):  # fmt: skip
        checked = validate_row(raw, "CN")
        assert not isinstance(checked, list), checked
        rows.append(checked)
    with console.services.sessions() as session:
        upsert(session, rows, Sealer(console.services.keys, SECRET), T0)
        session.commit()
        return {n.number_masked: n.id for n in session.scalars(select(DebtorNumber))}


def _refusals(console: Console) -> None:
    """ACC-1's relative on the global list, its emergency contact on bank-a's; Chicago busy."""
    with console.services.sessions() as session:
        for number, scope, scope_id in (
            ("13900139000", Scope.GLOBAL, ""),
            ("13700137000", Scope.CLIENT, "bank-a"),
        ):
            row = DncRow(normalize(number, "CN"), scope, scope_id, "asked not to be called")
            add_entries(session, [row], lambda e: number_key(SECRET, e), "test", "sup1", T0)
        session.add(NumberStatusEvent(number_key=_key("+13125550100"), status="busy",
                                      at=datetime(2026, 11, 24, 14, 25, tzinfo=UTC),
                                      call_id="c0", evidence="SIP 486 Busy Here"))  # fmt: skip
        session.commit()


def _registered(console: Console, agent: str = "agent7") -> None:
    with console.services.sessions() as session:
        session.add(SipRegistration(username=agent, contact=f"sip:{agent}@127.0.0.1:5099",
                                    expires_at=console.clock() + timedelta(days=2),
                                    updated_at=console.clock()))  # fmt: skip
        session.commit()


def _called(console: Console, number: str, recording_id: str, at: datetime) -> None:
    """A call the dialer placed to `number` and recorded: booked by keyed hash only."""
    with console.services.sessions() as session:
        session.add(
            CallAttempt(
                call_id=f"c-{recording_id[:8]}", sip_call_id="s", agent="agent7",
                number_key=_key(number), number_masked=mask(normalize(number, "CN")),
                started_at=at, placed=True, answered=True, duration_s=60.0, sip_status=200,
                sip_reason="OK", ended_by="agent", recording_id=recording_id,
            )
        )  # fmt: skip
        session.commit()


def _ids(page: str) -> list[str]:
    return re.findall(r'href="/calls/([0-9a-f]{32})"', page)


def test_recordings_page_finds_by_case_debtor_agent_client_and_day(console: Console) -> None:
    _accounts(console)
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
    _accounts(console)
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
        return api.get("/api/v1/recordings", params=params,
                       headers={"Authorization": f"Bearer {tokens[who]}"})  # fmt: skip

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


@pytest.fixture
def stored(console: Console, tmp_path: Path) -> str:
    """A real recording in both locked buckets, for holds and downloads."""
    wav = write_wav(tmp_path / "call.wav", [noise(3, seed=1), noise(3, seed=2)])
    info = CallInfo("call-real", "agent7", T0, debtor_id="ACC-1", client_id="bank-a")
    services = console.services
    row = spool_call(services.sessions, services.spool, services.keys, wav, info, 730, T0)
    upload_pending(services.sessions, services.spool, services.copies, T0)
    return row.id


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_call_page_download_and_legal_hold_need_a_reason_and_are_audited(
    console: Console, stored: str
) -> None:
    sup = console.supervisor()
    url = f"/calls/{stored}"
    page = sup.get(url, params={"reason": "bank complaint 4411"}).text
    assert f'action="/api/v1/recordings/{stored}/audio" id="download"' in page
    assert "Not on legal hold." in page and "Place legal hold</button>" in page
    audio = f"/api/v1/recordings/{stored}/audio"
    assert sup.get(audio, params={"download": "true"}).status_code == 422  # no reason, no file
    got = sup.get(audio, params={"download": "true", "reason": "bank complaint 4411"})
    assert (
        got.status_code == 200 and f'filename="{stored}.ogg"' in got.headers["content-disposition"]
    )
    assert got.content[:4] == b"OggS"

    form = {"csrf": _csrf(page), "on": "true", "listening": "bank complaint 4411"}
    short = sup.post(f"{url}/legal-hold", data=form | {"reason": "x"})
    assert short.status_code == 422 and "Say why" in short.text
    assert sup.post(f"{url}/legal-hold", data=form | {"csrf": "forged", "reason": "court order 12"}
                    ).status_code == 403  # fmt: skip
    held = sup.post(f"{url}/legal-hold", data=form | {"reason": "court order 12"})
    assert held.status_code == 303 and held.headers["location"] == (
        f"{url}?reason=bank+complaint+4411"
    )
    page = sup.get(held.headers["location"]).text
    assert "On legal hold" in page and "Lift legal hold</button>" in page
    with console.services.sessions() as session:
        row = session.get(Recording, stored)
        assert row is not None and row.legal_hold
        for copy in console.services.copies:  # S3 holds it, not only the database
            version = getattr(row, f"{copy.name}_version")
            assert copy.client.is_object_legal_hold_enabled(
                copy.target.bucket, row.object_key, version
            )
    lifted = sup.post(f"{url}/legal-hold", data=form | {"on": "false", "reason": "case closed"})
    assert lifted.status_code == 303 and "Not on legal hold." in sup.get(url).text
    with console.services.sessions() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    trail = [(e.actor, e.action, e.reason) for e in entries if e.target == stored]
    assert ("sup1", "download", "bank complaint 4411") in trail
    assert ("sup1", "legal-hold-on", "court order 12") in trail
    assert ("sup1", "legal-hold-off", "case closed") in trail

    qa = console.logged_in("qa1")
    qa_page = qa.get(url, params={"reason": "weekly QA"}).text
    assert 'id="download"' not in qa_page and 'id="legal-hold"' not in qa_page
    assert qa.post(f"{url}/legal-hold", data=form | {"reason": "court order"}).status_code == 403
    agent = console.logged_in("agent7")  # the agent's own call: play, never export
    own = agent.get(url, params={"reason": "my own call"}).text
    assert "<audio" in own and 'id="download"' not in own and "download=true" not in own
    assert agent.get(audio, params={"reason": "mine", "download": "true"}).status_code == 403
    assert agent.get(audio, params={"reason": "mine"}).status_code == 200


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
    csrf = _csrf(page)
    bad = sup.post("/retrieval", data={"csrf": csrf, "subject": "no spaces please", "reason": "x"})
    assert bad.status_code == 422 and "subject" in bad.text
    filed = sup.post("/retrieval", data={"csrf": csrf, "subject": "CASE-TUE",
                                         "reason": "complaint 4411"})  # fmt: skip
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
    assert sup.post(action, data={"csrf": "forged", "recording_id": console.recording.id}
                    ).status_code == 403  # fmt: skip
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


def _row(page: str, masked: str) -> str:
    found = re.search(rf'<tr class="number" data-rule="[a-z_]+">\s*<td>{re.escape(masked)}</td>'
                      r".*?</tr>", page, re.S)  # fmt: skip
    assert found is not None, (masked, page)
    return found.group(0)


def test_agent_call_page_says_when_each_number_may_be_called(console: Console) -> None:
    ids = _accounts(console)
    _refusals(console)
    console.clock.now = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # 22:30 Shanghai, 09:30 NY
    agent = console.logged_in("agent7")
    page = agent.get("/agent/call", params={"client": "bank-a", "account": "ACC-1"})
    assert page.status_code == 200
    text = page.text
    debtor = _row(text, "+86138****8000")
    assert 'data-rule="window"' in debtor
    assert "may call from 2026-11-25 08:00 (Asia/Shanghai)" in debtor
    assert "Call</button>" not in debtor and '<span class="tag role">debtor</span>' in debtor
    relative = _row(text, "+86139****9000")
    assert "not called" in relative and "do-not-call list for everyone" in relative
    emergency = _row(text, "+86137****7000")
    assert "do-not-call list of client bank-a" in emergency and "Call</button>" not in emergency
    assert '<span class="tag role">emergency</span>' in emergency
    busy = _row(text, "+131****0100")  # busy until 14:35 UTC, then 22:35 in the debtor's zone
    assert 'data-rule="number_status"' in busy and "SIP 486 Busy Here" in busy
    assert "may call from 2026-11-25 08:00 (Asia/Shanghai)" in busy
    assert "Call</button>" not in text  # nothing on this account may be called now
    assert "王小明" not in text and "13800138000" not in text  # no name, no full number
    assert 'onpaste="return false"' in text and 'oncopy="return false"' in text
    assert ("agent7", "debtor-view") in console.actions()
    new_york = agent.get("/agent/call", params={"client": "bank-a", "account": "ACC-7"}).text
    employer = _row(new_york, "+121****5000")
    assert "may call now" in employer and "Call</button>" in employer
    assert '<span class="tag role">employer</span>' in employer

    console.clock.now = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    agent = console.logged_in("agent7")  # the evening's session has gone idle
    later = agent.get("/agent/call", params={"client": "bank-a", "account": "ACC-1"}).text
    assert "may call now" in _row(later, "+86138****8000")
    assert "may call now" in _row(later, "+131****0100")
    assert "not called" in _row(later, "+86139****9000")

    csrf = _csrf(later)
    by_number = agent.post("/agent/call/find", data={"csrf": csrf, "number": "139 0013 9000"})
    assert by_number.status_code == 200 and "bank-a / ACC-1" in by_number.text
    nobody = agent.post("/agent/call/find", data={"csrf": csrf, "number": "13500135000"})
    assert "No debtor found." in nobody.text
    assert agent.post("/agent/call/find", data={"csrf": "x", "number": "1"}).status_code == 403

    call = {"csrf": csrf, "number_id": str(ids["+86138****8000"])}
    unregistered = agent.post("/agent/call", data=call)
    assert unregistered.status_code == 409 and "softphone is not registered" in unregistered.text
    refused = agent.post("/agent/call", data=call | {"number_id": str(ids["+86137****7000"])})
    assert refused.status_code == 409 and "Not called:" in refused.text
    _registered(console)
    assert agent.post("/agent/call", data=call | {"csrf": "forged"}).status_code == 403
    queued = agent.post("/agent/call", data=call)
    assert queued.status_code == 303 and "queued=" in queued.headers["location"]
    shown = agent.get(queued.headers["location"]).text
    assert "queued: your softphone rings first" in shown
    with console.services.sessions() as session:
        requests = list(session.scalars(select(CallRequest)))
    assert [(r.agent, r.number_masked, r.status, r.debtor_id, r.client_id, r.debtor_tz)
            for r in requests] == [
        ("agent7", "+86138****8000", "queued", "ACC-1", "bank-a", "Asia/Shanghai")
    ]  # fmt: skip
    assert ("agent7", "click-to-call") in console.actions()
    assert console.logged_in("qa1").get("/agent/call").status_code == 403


@pytest.mark.parametrize("utc_hour", [14, 24])  # 22:00 and 08:00 the next day in Shanghai
def test_agent_page_and_dialer_give_the_same_answer(console: Console, utc_hour: int) -> None:
    """For each of a debtor's numbers, the page's verdict is the dialer's for that request."""
    _accounts(console)
    _refusals(console)
    console.clock.now = datetime(2026, 11, 24, tzinfo=UTC) + timedelta(hours=utc_hour, minutes=30)
    _registered(console)
    with console.services.sessions() as session:
        user = session.scalar(select(User).where(User.username == "agent7"))
        assert user is not None
        token = issue_token(session, user, "softphone", T0)
    page = console.logged_in("agent7").get("/agent/call?client=bank-a&account=ACC-1").text
    decider = policy_decider(call_site(console.services, SECRET))
    answers = set()
    for number in ACC_1:
        queued = console.browser().post(
            "/api/v1/calls",
            json={"agent": "agent7", "number": number, "debtor_id": "ACC-1", "client": "bank-a"},
            headers={"Authorization": f"Bearer {token}"},
        )  # the real click-to-call API copies the debtor's facts into the request
        assert queued.status_code == 202, queued.text
        allowed, rule, _ = decider(normalize(number, "CN"), queued.json()["id"])
        row = _row(page, mask(normalize(number, "CN")))
        assert f'data-rule="{rule}"' in row, (number, rule, row)
        assert ("may call now" in row) is allowed and ("Call</button>" in row) is allowed
        answers.add(allowed)
    assert answers == ({False} if utc_hour == 14 else {True, False})


def test_every_agent_page_blocks_copy_paste_and_export(console: Console) -> None:
    agent = console.logged_in("agent7")
    for url in ("/agent", "/agent/call", f"/calls/{console.recording.id}?reason=my+call"):
        page = agent.get(url)
        assert page.status_code == 200, url
        for handler in ("oncopy", "oncut", "onpaste", "oncontextmenu"):
            assert f'{handler}="return false"' in page.text, (url, handler)
        assert 'class="no-copy"' in page.text and "user-select: none" in page.text
        assert "download" not in page.text.lower(), url
    qa_page = console.logged_in("qa1").get("/search").text
    assert 'onpaste="return false"' not in qa_page  # only agents' pages are locked

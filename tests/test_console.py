"""The web console over HTTP: login with lockout, search page, call page, agent page."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.audit import AuditEntry
from api.models import User
from api.services import Services
from api.totp import code_at
from api.users import create_user
from api.web_sessions import COOKIE, enroll_totp
from dialer.models import CallAttempt
from qa_scoring.store import score_transcript
from tests.apps import make_app
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import TranscriptRow

PASSWORD = "a long passphrase"


class Console:
    def __init__(self, services: Services, engine: Engine) -> None:
        self.services = services
        self.app = make_app(services, engine)
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

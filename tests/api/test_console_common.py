"""The web console over HTTP: login with lockout and one-time codes, logout, roles, cookies."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from api.accounts.sessions import COOKIE
from api.accounts.totp import code_at
from tests.api.console_site import (
    PASSWORD,
    Console,
)


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

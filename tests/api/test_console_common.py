"""The web console over HTTP: login with its limits and one-time codes, logout, roles, cookies."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from api.accounts.sessions import COOKIE, REFUSED
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


def test_wrong_passwords_slow_that_source_only(console: Console) -> None:
    browser = console.browser("10.0.0.66")
    for _ in range(3):  # free tries
        wrong = browser.post("/login", data={"username": "qa1", "password": "not it at all"})
        assert wrong.status_code == 401 and REFUSED in wrong.text
    waiting = browser.post("/login", data={"username": "qa1", "password": PASSWORD})
    assert waiting.status_code == 429 and "too many failed logins" in waiting.text
    unknown = console.browser("10.0.0.67").post(
        "/login", data={"username": "nobody", "password": PASSWORD}
    )
    assert unknown.status_code == 401 and REFUSED in unknown.text  # same words: no enumeration
    # qa1 itself, from anywhere else, is not locked out by the stranger's tries
    assert console.logged_in("qa1").get("/search").status_code == 200
    console.clock.now = console.services.clock() + timedelta(seconds=6)  # the first wait is 5 s
    again = browser.post("/login", data={"username": "qa1", "password": PASSWORD})
    assert again.status_code == 303
    assert [a for _, a in console.actions()].count("login-failed") == 5


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
    assert refused.status_code == 401 and REFUSED in refused.text  # no code enrolled: same words
    assert "ask an admin to enrol one" in refused.text  # the page says so for everyone
    secret = console.enroll("sup1")
    now = console.services.clock().timestamp()
    wrong = browser.post("/login", data=form | {"code": "000000"})
    assert wrong.status_code == 401 and REFUSED in wrong.text
    good = browser.post("/login", data=form | {"code": code_at(secret, now)})
    assert good.status_code == 303
    replay = console.browser().post("/login", data=form | {"code": code_at(secret, now)})
    assert replay.status_code == 401  # a code works once

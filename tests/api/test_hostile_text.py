"""Free text is real text: a NUL, a control or bidi character, or a blank reason is a 4xx, never
a 500, on both databases; and a refused query is never written to the log.
"""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.web.params import text_problem
from api.web.services import Services
from tests.api.console_site import Console
from tests.apps import make_app, role_tokens


@pytest.fixture
def api(services: Services, engine: Engine) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(make_app(services, engine), raise_server_exceptions=False)
    return client, role_tokens(services, "hostile")


def _as(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


@pytest.mark.parametrize(
    "reason",
    ["bad\x00reason", "   ", "\t\t\t", "ok\x1b[31m red", "tidy\u202eup", "ab", "line\nbreak"],
)
def test_a_reason_must_be_real_text(api: tuple[TestClient, dict[str, str]], reason: str) -> None:
    client, tokens = api
    answer = client.post(
        "/api/v1/retrieval-requests",
        json={"subject": "ACC-1", "reason": reason},
        headers=_as(tokens, "supervisor"),
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert len(reason.strip()) < 3 or reason.strip() not in answer.text  # not echoed back


def test_a_good_reason_is_trimmed_and_kept(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    answer = client.post(
        "/api/v1/retrieval-requests",
        json={"subject": "ACC-1", "reason": "  客户投诉 complaint 42  "},
        headers=_as(tokens, "supervisor"),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["reason"] == "客户投诉 complaint 42"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/transcripts/search?q=%00",
        "/api/v1/transcripts/search?q=abc%00def",
        "/api/v1/transcripts/search?q=%1b%5b2J",
        "/api/v1/recordings?agent=a%00",
        "/api/v1/audit?actor=%00",
        "/api/v1/recordings/" + "0" * 32 + "/audio?reason=why%00not",
        "/search?q=%00",
        "/calls/" + "0" * 32 + "?reason=%00",
    ],
)
def test_a_control_character_in_a_query_is_422_and_not_logged(
    api: tuple[TestClient, dict[str, str]], url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, tokens = api
    with caplog.at_level(logging.DEBUG):
        answer = client.get(url, headers=_as(tokens, "admin"))
    assert answer.status_code == 422, answer.text
    logged = _ours(caplog)
    assert "\x00" not in logged and "abc" not in logged and "\x1b" not in logged


def _ours(caplog: pytest.LogCaptureFixture) -> str:
    """What the server logged (the test's own HTTP client logs the URL it sends)."""
    mine = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    return "\n".join(f"{r.getMessage()} {vars(r)}" for r in mine)


def test_a_search_phrase_is_not_logged(
    api: tuple[TestClient, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    client, tokens = api
    with caplog.at_level(logging.DEBUG):
        answer = client.get(
            "/api/v1/transcripts/search",
            params={"q": "密码 secret-phrase"},
            headers=_as(tokens, "qa"),
        )
    assert answer.status_code == 200
    assert "secret-phrase" not in _ours(caplog)


def test_console_forms_refuse_control_characters(console: Console) -> None:
    login = console.browser().post("/login", data={"username": "qa\x00", "password": "x\x00"})
    assert login.status_code == 401  # just a refused login, not a 500
    sup = console.supervisor()
    page = sup.get(f"/calls/{console.recording.id}", params={"reason": "   "})
    assert page.status_code == 200 and 'id="player"' not in page.text  # asked again, not played
    csrf = _csrf(sup.get("/retrieval").text)
    filed = sup.post("/retrieval", data={"subject": "ACC-1", "reason": "why\x00", "csrf": csrf})
    assert filed.status_code == 422
    blank = sup.post("/retrieval", data={"subject": "ACC-1", "reason": "   ", "csrf": csrf})
    assert blank.status_code == 422


def _csrf(page: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("complaint 42", None),
        ("客户要求调取录音", None),
        ("投诉\u3000处理", None),  # an ideographic space is a space
        ("   ", "blank"),
        ("ab", "at least 3"),
        ("a\x00b c", "control"),
        ("a\u200bb c", None),  # a zero-width space is a format character, not a control
        ("a\u202eb c", "control"),
        ("a\u2028b c", "control"),
    ],
)
def test_what_counts_as_text(text: str, problem: str | None) -> None:
    found = text_problem(text)
    assert (found is None) if problem is None else (found is not None and problem in found)

"""Retrieval requests over HTTP: due the same working day, answered, reported when late."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.web.auth import issue_token
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0, add_recording

SH = ZoneInfo("Asia/Shanghai")


class Desk:
    """The API with a clock the test moves, and one user per role that takes part."""

    def __init__(self, services: Services, engine: Engine) -> None:
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=SH)  # a Tuesday morning
        self.services = dataclasses.replace(services, clock=lambda: self.now)
        self.client = TestClient(make_app(self.services, engine))
        self.tokens: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("sup1", "supervisor", None),
                ("aud-a", "auditor", "bank-a"),
                ("agent7", "agent", None),
            ):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                user.client_id = client
                session.commit()
                self.tokens[name] = issue_token(session, user, "test", T0)
            self.recording_id = add_recording(session).id

    def call(self, method: str, url: str, who: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, url, headers=headers, json=body)

    def actions(self) -> list[str]:
        with self.services.sessions() as session:
            return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


@pytest.fixture
def desk(services: Services, engine: Engine) -> Desk:
    return Desk(services, engine)


URL = "/api/v1/retrieval-requests"


def test_request_is_due_today_and_answered_on_time(desk: Desk) -> None:
    asked = desk.call("POST", URL, "aud-a", {"subject": "case-4411", "reason": "complaint 88"})
    assert asked.status_code == 201
    request = asked.json()
    assert datetime.fromisoformat(request["due_at"]) == datetime(2026, 11, 24, 18, tzinfo=SH)
    assert request["late"] is False and request["fulfilled_at"] is None

    desk.now += timedelta(hours=3)
    done = desk.call(
        "POST", f"{URL}/{request['id']}/fulfil", "sup1", {"recording_id": desk.recording_id}
    )
    assert done.status_code == 200
    assert done.json()["fulfilled_by"] == "sup1" and done.json()["late"] is False
    again = desk.call(
        "POST", f"{URL}/{request['id']}/fulfil", "sup1", {"recording_id": desk.recording_id}
    )
    assert again.status_code == 409
    assert desk.actions() == ["retrieval-request", "retrieval-fulfil"]


def test_late_report_lists_missed_and_overdue_requests(desk: Desk) -> None:
    desk.now = datetime(2026, 11, 27, 17, 0, tzinfo=SH)  # Friday afternoon
    missed = desk.call("POST", URL, "sup1", {"subject": "case-1", "reason": "bank audit"}).json()
    answered = desk.call("POST", URL, "sup1", {"subject": "case-2", "reason": "bank audit"}).json()
    desk.now = datetime(2026, 11, 27, 17, 30, tzinfo=SH)
    desk.call("POST", f"{URL}/{answered['id']}/fulfil", "sup1", {"recording_id": desk.recording_id})
    desk.now = datetime(2026, 11, 27, 19, 0, tzinfo=SH)  # after hours: due next Monday
    fresh = desk.call("POST", URL, "sup1", {"subject": "case-3", "reason": "bank audit"}).json()
    assert datetime.fromisoformat(fresh["due_at"]) == datetime(2026, 11, 30, 18, tzinfo=SH)

    late = desk.call("GET", f"{URL}?late=true", "sup1").json()["requests"]
    assert [r["subject"] for r in late] == ["case-1"]
    open_ = desk.call("GET", f"{URL}?open=true", "sup1").json()["requests"]
    assert [(r["subject"], r["late"]) for r in open_] == [("case-1", True), ("case-3", False)]
    assert missed["id"] == late[0]["id"]


def test_roles_and_bad_input(desk: Desk) -> None:
    assert desk.call("POST", URL, "agent7", {"subject": "c", "reason": "abc"}).status_code == 403
    made = desk.call("POST", URL, "aud-a", {"subject": "case-9", "reason": "dispute"}).json()
    forbidden = desk.call(
        "POST", f"{URL}/{made['id']}/fulfil", "aud-a", {"recording_id": desk.recording_id}
    )
    assert forbidden.status_code == 403
    for body in (
        {"subject": "../../etc/passwd", "reason": "x"},
        {"subject": "case 1; drop table", "reason": "dispute"},
        {"subject": "case-1", "reason": "dispute", "recording_id": "../x"},
    ):
        response = desk.call("POST", URL, "sup1", body)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    unknown = desk.call(
        "POST", URL, "sup1", {"subject": "case-1", "reason": "dispute", "recording_id": "0" * 32}
    )
    assert unknown.status_code == 422 and "no recording" in unknown.json()["detail"]
    missing = desk.call("POST", f"{URL}/999/fulfil", "sup1", {"recording_id": "0" * 32})
    assert missing.status_code == 404
    # an auditor sees only the requests they made
    desk.call("POST", URL, "sup1", {"subject": "case-10", "reason": "internal"})
    mine = desk.call("GET", URL, "aud-a").json()["requests"]
    assert [r["subject"] for r in mine] == ["case-9"]
    assert len(desk.call("GET", URL, "sup1").json()["requests"]) == 2

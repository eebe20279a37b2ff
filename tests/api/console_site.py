"""The console as the console tests use it: the app with one account per role, a settable
clock, the number key, and the debtor accounts the supervisors' and agents' pages look up.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.models import User
from api.accounts.sessions import enroll_totp
from api.accounts.totp import code_at
from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.web.services import Services
from dialer.debtors import DebtorNumber, Sealer, upsert, validate_row
from dialer.models import CallAttempt
from dialer.numbers import normalize, number_key
from tests.apps import make_app
from tests.factories import T0, add_recording, add_transcript

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
        services = replace(services, clock=self.clock, number_secret=SECRET)
        self.services = services
        self.app = make_app(services, engine)
        with services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("agent7", "agent", None),
                ("aud-b", "auditor", "bank-b"),
                ("sup1", "supervisor", None),
            ):
                user = create_user(session, name, role, PASSWORD, T0, client=client)
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
                    call_id="c1",
                    sip_call_id="s1",
                    agent="agent7",
                    number_key="k",
                    number_masked="+86138****8000",
                    started_at=T0,
                    placed=True,
                    answered=True,
                    duration_s=75.0,
                    sip_status=200,
                    sip_reason="OK",
                    ended_by="agent",
                )
            )
            session.commit()

    def browser(self, source: str = "testclient") -> TestClient:
        """A browser at the address `source` (what the login limits count)."""
        return TestClient(self.app, follow_redirects=False, client=(source, 50000))

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


def key(number: str) -> str:
    return number_key(SECRET, normalize(number, "CN"))


ACC_1 = {  # bank-a/ACC-1, in Shanghai: one number per role, and a relative in Chicago
    "13800138000": "debtor",
    "13900139000": "relative",
    "13700137000": "emergency",
    "+13125550100": "relative",
}


def add_accounts(console: Console) -> dict[str, int]:
    """bank-a/ACC-1 (Shanghai), bank-a/ACC-7 (New York) and bank-b/ACC-9 (Shanghai).

    Returns the number rows' ids by masked number.
    """
    rows = []
    for raw in (
        {
            "client": "bank-a",
            "external_id": "ACC-1",
            "name": "王小明",
            "stage": "early",
            "timezone": "Asia/Shanghai",
            "callback_windows": "Mon-Fri 18:00-20:00",
            "numbers": ";".join(f"{role}:{number}" for number, role in ACC_1.items()),
        },
        {
            "client": "bank-a",
            "external_id": "ACC-7",
            "name": "John Doe",
            "stage": "early",
            "timezone": "America/New_York",
            "numbers": "employer:+12127365000",
        },
        {
            "client": "bank-b",
            "external_id": "ACC-9",
            "name": "李四",
            "stage": "late",
            "timezone": "Asia/Shanghai",
            "numbers": "debtor:13600136000",
        },
    ):
        checked = validate_row(raw, "CN")
        assert not isinstance(checked, list), checked
        rows.append(checked)
    with console.services.sessions() as session:
        upsert(session, rows, Sealer(console.services.keys, SECRET), T0)
        session.commit()
        return {n.number_masked: n.id for n in session.scalars(select(DebtorNumber))}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)

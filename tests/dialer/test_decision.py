"""The decision before the trunk, with the debtor: a click-to-call's debtor (its do-not-call
lists, zone, call-back windows, caps) and a keypad call's number holders, as the worker
decides them (`policy_decider`) against a real database of each backend.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Sealer, upsert, validate_row
from dialer.decision import policy_decider
from dialer.dnc import Scope, add_entries, parse_csv
from dialer.models import CallAttempt, CallRequest, SipRegistration
from dialer.numbers import number_key
from recording.db.engine import session_factory
from tests.apps import make_app
from tests.dialer.running import Parts, office_hours
from tests.dialer.sip.test_b2bua import E164, NUMBER


def _debtor_row(
    client: str, external_id: str, timezone: str, windows: str = "", number: str = NUMBER
) -> DebtorIn:
    checked = validate_row(
        {
            "client": client,
            "external_id": external_id,
            "name": "王小明",
            "stage": "early",
            "timezone": timezone,
            "numbers": f"debtor:{number}",
            "callback_windows": windows,
        },
        "CN",
    )
    assert isinstance(checked, DebtorIn), checked
    return checked


def test_click_to_call_decides_with_the_debtor(
    parts: Parts, engine: Engine, services: Services
) -> None:
    """A debtor's own do-not-call list, zone and call-back windows reach the worker's
    decision through the request the API queued; the sealed debtor row is never read."""
    site = parts.site()
    secret = site.number_secret
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        upsert(
            session,
            [
                _debtor_row("bank-a", "D-1", "Asia/Shanghai"),
                _debtor_row("bank-a", "D-2", "Asia/Shanghai"),
                _debtor_row("bank-b", "NY-1", "America/New_York"),
                _debtor_row("bank-b", "NY-2", "America/New_York", "daily 20:00-22:00"),
                _debtor_row("bank-c", "D-1", "Asia/Shanghai"),  # the same id at another client
            ],
            Sealer(site.keys, secret),
            now,
        )
        rows, _ = parse_csv(f"{NUMBER},wants letters only\n", "CN", Scope.DEBTOR, "bank-a/D-1")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "d.csv", "sup", now)
        rows, _ = parse_csv("13900139000,asked by phone\n", "CN", Scope.DEBTOR, "D-2")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "e.csv", "sup", now)
        rows, _ = parse_csv("13700137000,client objects\n", "CN", Scope.CLIENT, "bank-b")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "c.csv", "sup", now)
        session.add(
            SipRegistration(
                username="agent1",
                contact="sip:agent1@127.0.0.1:5999",
                expires_at=now + timedelta(hours=1),
                updated_at=now,
            )
        )
        user = create_user(session, "sup.wang", "supervisor", "a long passphrase", now)
        headers = {"Authorization": f"Bearer {issue_token(session, user, 't', now)}"}
        session.commit()
    api = TestClient(make_app(dataclasses.replace(services, keys=site.keys), engine))

    def request(debtor: str | None, client: str | None = None, number: str = NUMBER) -> int:
        body = {"agent": "agent1", "number": number, "debtor_id": debtor, "client": client}
        answer = api.post("/api/v1/calls", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])

    decide_call = policy_decider(site)  # 10:00 on a Tuesday in Shanghai = 21:00 in New York
    allowed, rule, reason = decide_call(E164, request("D-1", "bank-a"))
    assert (allowed, rule) == (False, "do_not_call") and "do-not-call list of this debtor" in reason
    assert decide_call(E164, request("D-2")) == (True, "allowed", ANY)  # another debtor
    # A keypad call knows only the number: every debtor holding it has its lists applied.
    allowed, rule, reason = decide_call(E164, None)
    assert (allowed, rule) == (False, "do_not_call") and "of debtor D-1" in reason
    assert decide_call(E164, request("D-1", "bank-c"))[0], "another client's D-1"
    # A list named by the account id alone: that id at any client.
    assert decide_call("+8613900139000", request("D-2", number="13900139000"))[1] == "do_not_call"
    assert decide_call("+8613900139000", request("D-1", "bank-a", number="13900139000"))[0]
    # The client's list: bank-b's debtors only.
    assert decide_call("+8613700137000", request("NY-1", number="13700137000"))[1] == "do_not_call"
    assert decide_call("+8613700137000", request("D-2", number="13700137000"))[0]
    # The debtor's zone moves the window: 21:00 in New York is after calling hours ...
    allowed, rule, reason = decide_call(E164, request("NY-1"))
    assert (allowed, rule) == (False, "window") and "America/New_York" in reason
    # ... unless the debtor agreed to be called back then.
    assert decide_call(E164, request("NY-2"))[:2] == (True, "callback")
    # An ambiguous or unknown debtor is refused at the API, before anything is queued.
    no_client = {"agent": "agent1", "number": NUMBER, "debtor_id": "D-1"}
    ambiguous = api.post("/api/v1/calls", headers=headers, json=no_client)
    assert ambiguous.status_code == 422 and "several clients" in ambiguous.json()["detail"]
    unknown = api.post("/api/v1/calls", headers=headers, json={**no_client, "debtor_id": "D-9"})
    assert unknown.status_code == 422 and "no debtor" in unknown.json()["detail"]


def test_per_debtor_caps_count_the_debtors_calls_on_any_number(
    parts: Parts, engine: Engine
) -> None:
    site = parts.site()
    secret = site.number_secret
    with session_factory(engine)() as session:
        for i in range(3):  # three calls to D-1 this morning, on its other number
            session.add(
                CallAttempt(
                    call_id=f"d1-{i}",
                    sip_call_id=f"x{i}",
                    agent="agent1",
                    number_key=number_key(secret, "+8613900139000"),
                    number_masked="+86139****9000",
                    debtor_id="D-1",
                    started_at=office_hours() - timedelta(hours=1, minutes=i),
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    sip_status=486,
                    sip_reason="Busy Here",
                    ended_by="carrier",
                )
            )
        for debtor in ("D-1", "D-2"):
            session.add(
                CallRequest(
                    agent="agent1",
                    number_sealed=b"",
                    number_masked="+86138****8000",
                    debtor_id=debtor,
                    client_id="bank-a",
                    debtor_tz="Asia/Shanghai",
                    requested_by="sup",
                    status="claimed",
                    created_at=office_hours(),
                )
            )
        session.commit()
        first, second = session.scalars(select(CallRequest.id).order_by(CallRequest.id)).all()
    decide_call = policy_decider(site)
    assert decide_call(E164, first)[:2] == (False, "daily_cap")  # D-1, whatever the number
    assert decide_call(E164, second)[0]  # D-2 on the same number: its own count
    assert decide_call(E164, None)[0]  # the number itself was not called today


def test_a_keypad_call_is_decided_for_the_debtor_holding_the_number(
    parts: Parts, engine: Engine
) -> None:
    """A softphone dials a number, not a debtor: the debtor records say whose it is."""
    site = parts.site()
    secret = site.number_secret
    now = datetime.now(UTC)
    rows = [
        _debtor_row("bank-b", "NY-1", "America/New_York", number="13700137000"),
        _debtor_row("bank-a", "D-1", "Asia/Shanghai"),  # these two share NUMBER
        _debtor_row("bank-c", "D-7", "Asia/Shanghai"),
    ]
    with session_factory(engine)() as session:
        upsert(session, rows, Sealer(site.keys, secret), now)
        listed, _ = parse_csv(f"{NUMBER},wrong person\n", "CN", Scope.CLIENT, "bank-c")
        add_entries(session, listed, lambda e164: number_key(secret, e164), "c.csv", "sup", now)
        session.commit()
    decide_call = policy_decider(site)  # 10:00 on a Tuesday in Shanghai = 21:00 in New York
    # One holder: the call is that debtor's, in the debtor's zone.
    allowed, rule, reason = decide_call("+8613700137000", None)
    assert (allowed, rule) == (False, "window") and "America/New_York" in reason
    # Two holders (a shared phone): one client's list is enough to refuse it.
    allowed, rule, reason = decide_call(E164, None)
    assert (allowed, rule) == (False, "do_not_call") and "of client bank-c" in reason
    # Nobody's number: only the global list and the number's own history count.
    assert decide_call("+8613900139000", None)[:2] == (True, "allowed")

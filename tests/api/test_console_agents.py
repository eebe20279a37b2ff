"""The console pages for agents: their calls, click-to-call with the dialer's verdict."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.accounts.models import User
from api.web.auth import issue_token
from api.web.call_check import call_site
from dialer.decision import policy_decider
from dialer.dnc import DncRow, Scope, add_entries
from dialer.models import CallRequest, NumberStatusEvent, SipRegistration
from dialer.numbers import mask, normalize, number_key
from tests.api.console_site import (
    ACC_1,
    SECRET,
    Console,
    add_accounts,
    csrf_of,
    key,
)
from tests.factories import T0


def _refusals(console: Console) -> None:
    """ACC-1's relative on the global list, its emergency contact on bank-a's; Chicago busy."""
    with console.services.sessions() as session:
        for number, scope, scope_id in (
            ("13900139000", Scope.GLOBAL, ""),
            ("13700137000", Scope.CLIENT, "bank-a"),
        ):
            row = DncRow(normalize(number, "CN"), scope, scope_id, "asked not to be called")
            add_entries(session, [row], lambda e: number_key(SECRET, e), "test", "sup1", T0)
        session.add(
            NumberStatusEvent(
                number_key=key("+13125550100"),
                status="busy",
                at=datetime(2026, 11, 24, 14, 25, tzinfo=UTC),
                call_id="c0",
                evidence="SIP 486 Busy Here",
            )
        )
        session.commit()


def _registered(console: Console, agent: str = "agent7") -> None:
    with console.services.sessions() as session:
        session.add(
            SipRegistration(
                username=agent,
                contact=f"sip:{agent}@127.0.0.1:5099",
                expires_at=console.clock() + timedelta(days=2),
                updated_at=console.clock(),
            )
        )
        session.commit()


def _row(page: str, masked: str) -> str:
    found = re.search(
        rf'<tr class="number" data-rule="[a-z_]+">\s*<td>{re.escape(masked)}</td>'
        r".*?</tr>",
        page,
        re.S,
    )
    assert found is not None, (masked, page)
    return found.group(0)


def test_agent_call_page_says_when_each_number_may_be_called(console: Console) -> None:
    ids = add_accounts(console)
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

    csrf = csrf_of(later)
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
    assert [
        (r.agent, r.number_masked, r.status, r.debtor_id, r.client_id, r.debtor_tz)
        for r in requests
    ] == [("agent7", "+86138****8000", "queued", "ACC-1", "bank-a", "Asia/Shanghai")]
    assert ("agent7", "click-to-call") in console.actions()
    assert console.logged_in("qa1").get("/agent/call").status_code == 403


@pytest.mark.parametrize("utc_hour", [14, 24])  # 22:00 and 08:00 the next day in Shanghai
def test_agent_page_and_dialer_give_the_same_answer(console: Console, utc_hour: int) -> None:
    """For each of a debtor's numbers, the page's verdict is the dialer's for that request."""
    add_accounts(console)
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

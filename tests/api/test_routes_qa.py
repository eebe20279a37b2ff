"""QA over HTTP: a call's flags reviewed, appealed and decided, trends and weekly samples."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry, verify
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Sealer, upsert
from qa_scoring.sampling import SampleCall, draw_sample
from qa_scoring.store import score_transcript
from tests.apps import make_app
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import TranscriptRow

SH = ZoneInfo("Asia/Shanghai")
PACK = "cn-collections"
THREAT = [
    ("agent", 1.0, "您好，我是安信资产的催收员小王"),
    ("debtor", 4.0, "嗯"),
    ("agent", 10.0, "再不还就让你坐牢"),
]
CLEAN = [("agent", 1.0, "您好，我是安信资产的催收员小王"), ("debtor", 4.0, "嗯")]


class Desk:
    """The API with a movable clock and one user per role that takes part in QA."""

    def __init__(self, services: Services, engine: Engine) -> None:
        self.now = datetime(2026, 11, 30, 10, 0, tzinfo=SH)  # the Monday after the calls
        self.services = dataclasses.replace(services, clock=lambda: self.now)
        self.client = TestClient(make_app(self.services, engine))
        self.tokens: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("sup1", "supervisor", None),
                ("admin1", "admin", None),
                ("aud-a", "auditor", "bank-a"),
                ("aud-b", "auditor", "bank-b"),
                ("agent7", "agent", None),
                ("agent8", "agent", None),
            ):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                user.client_id = client
                session.commit()
                self.tokens[name] = issue_token(session, user, "test", T0)

    def scored_call(
        self,
        lines: list[tuple[str, float, str]],
        agent: str = "agent7",
        at: datetime = T0,
        client: str = "bank-a",
    ) -> str:
        with self.services.sessions() as session:
            recording = add_recording(session, agent=agent, recorded_at=at, client_id=client)
            add_transcript(session, recording.id, lines)
            tid = session.scalar(
                select(TranscriptRow.id).where(TranscriptRow.recording_id == recording.id)
            )
            assert tid is not None
            score_transcript(session, tid, PACK, at)
            return recording.id

    def call(self, method: str, url: str, who: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, url, headers=headers, json=body)

    def audit(self) -> list[AuditEntry]:
        with self.services.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))

    def threat_flag(self, recording_id: str) -> dict[str, Any]:
        found = self.call("GET", f"/api/v1/qa/calls/{recording_id}", "qa1").json()
        flags: list[dict[str, Any]] = found["flags"]
        return next(f for f in flags if f["category"] == "intimidation")


@pytest.fixture
def desk(services: Services, engine: Engine) -> Desk:
    return Desk(services, engine)


QA = "/api/v1/qa"


def test_flag_confirmed_appealed_and_upheld_with_history_and_audit(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    call = desk.call("GET", f"{QA}/calls/{rid}", "qa1")
    assert call.status_code == 200
    body = call.json()
    assert body["agent"] == "agent7" and body["pack"] == PACK
    assert body["score"] == body["reviewed_score"] and body["score"] <= 60
    flag = desk.threat_flag(rid)
    assert flag["state"] == "open" and flag["severity"] == 4 and flag["history"] == []
    assert flag["start"] == 10.0 and "坐牢" in flag["text"]
    assert flag["consequence"].startswith("四级违规")  # the pack's text for level 4

    url = f"{QA}/flags/{flag['id']}"
    confirmed = desk.call("POST", f"{url}/review", "qa1", {"action": "confirm"})
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    desk.now += timedelta(hours=1)
    appealed = desk.call("POST", f"{url}/appeal", "agent7", {"comment": "I was quoting him"})
    assert appealed.status_code == 200 and appealed.json()["state"] == "appealed"
    desk.now += timedelta(hours=1)
    upheld = desk.call(
        "POST", f"{url}/decide", "sup1", {"action": "uphold", "comment": "no quote in audio"}
    )
    assert upheld.status_code == 200
    history = upheld.json()["history"]
    assert [(e["actor"], e["action"], e["comment"]) for e in history] == [
        ("qa1", "confirm", None),
        ("agent7", "appeal", "I was quoting him"),
        ("sup1", "uphold", "no quote in audio"),
    ]
    assert upheld.json()["state"] == "upheld"
    final = desk.call("GET", f"{QA}/calls/{rid}", "agent7").json()
    assert desk.threat_flag(rid)["state"] == "upheld" and final["reviewed_score"] == body["score"]

    entries = desk.audit()
    assert [e.action for e in entries] == ["qa-flag-confirm", "qa-flag-appeal", "qa-flag-uphold"]
    assert [e.actor for e in entries] == ["qa1", "agent7", "sup1"]
    assert entries[1].reason == "I was quoting him" and entries[1].target == f"flag:{flag['id']}"
    detail = json.loads(entries[2].detail)
    assert (detail["from"], detail["to"], detail["recording"]) == ("appealed", "upheld", rid)
    assert verify_ok(desk)


def verify_ok(desk: Desk) -> bool:
    with desk.services.sessions() as session:
        return verify(session) == []


def test_dismissal_and_overturn_raise_the_reviewed_score(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    other = desk.scored_call(THREAT)
    before = desk.call("GET", f"{QA}/calls/{rid}", "sup1").json()
    flag = desk.threat_flag(rid)
    dismissed = desk.call(
        "POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "dismiss", "comment": "joke"}
    )
    assert dismissed.json()["state"] == "dismissed"
    after = desk.call("GET", f"{QA}/calls/{rid}", "sup1").json()
    assert after["score"] == before["score"]  # the machine's verdict is kept
    assert after["reviewed_score"] == before["score"] + 40

    flag2 = desk.threat_flag(other)
    desk.call("POST", f"{QA}/flags/{flag2['id']}/review", "sup1", {"action": "confirm"})
    desk.call("POST", f"{QA}/flags/{flag2['id']}/appeal", "agent7", {"comment": "misheard"})
    overturned = desk.call(
        "POST",
        f"{QA}/flags/{flag2['id']}/decide",
        "admin1",
        {"action": "overturn", "comment": "ok, agreed"},
    )
    assert overturned.json()["state"] == "overturned"
    assert desk.call("GET", f"{QA}/calls/{other}", "sup1").json()["reviewed_score"] == (
        before["score"] + 40
    )


def test_a_flag_on_uncertain_words_is_listen_first_until_confirmed(desk: Desk) -> None:
    with desk.services.sessions() as session:
        recording = add_recording(session, agent="agent7", recorded_at=T0, client_id="bank-a")
        add_transcript(session, recording.id, THREAT, probability=0.3)
        tid = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == recording.id)
        )
        assert tid is not None
        score_transcript(session, tid, PACK, T0)
        rid = recording.id
    sure = desk.call("GET", f"{QA}/calls/{desk.scored_call(THREAT)}", "qa1").json()
    body = desk.call("GET", f"{QA}/calls/{rid}", "qa1").json()
    flag = desk.threat_flag(rid)
    assert flag["listen_first"] and flag["needs_listening"]
    assert not desk.threat_flag(desk.scored_call(THREAT))["listen_first"]
    # not counted until a person has listened: the threat costs nothing yet
    assert body["reviewed_score"] == sure["reviewed_score"] + 40

    desk.call("POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "confirm"})
    confirmed = desk.threat_flag(rid)
    assert not confirmed["listen_first"] and confirmed["needs_listening"]
    after = desk.call("GET", f"{QA}/calls/{rid}", "qa1").json()
    assert after["reviewed_score"] == sure["reviewed_score"]


def test_roles_and_other_peoples_calls(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    url = f"{QA}/flags/{flag['id']}"
    for who in ("agent7", "aud-a", "admin1"):
        assert desk.call("POST", f"{url}/review", who, {"action": "confirm"}).status_code == 403
    assert desk.call("POST", f"{url}/decide", "qa1", {"action": "uphold"}).status_code == 403
    assert desk.call("POST", f"{url}/appeal", "qa1", {"comment": "no, not so"}).status_code == 403
    assert desk.call("POST", f"{url}/review", "qa1", {"action": "confirm"}).status_code == 200
    # another agent may not appeal agent7's flag, whatever they write
    forbidden = desk.call("POST", f"{url}/appeal", "agent8", {"comment": "not fair"})
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"
    assert "only agent7" in forbidden.json()["detail"]
    # who can see the call
    assert desk.call("GET", f"{QA}/calls/{rid}", "agent7").status_code == 200
    assert desk.call("GET", f"{QA}/calls/{rid}", "aud-a").status_code == 200
    assert desk.call("GET", f"{QA}/calls/{rid}", "agent8").status_code == 404
    assert desk.call("GET", f"{QA}/calls/{rid}", "aud-b").status_code == 404
    assert desk.call("GET", f"{QA}/calls/{'0' * 32}", "qa1").status_code == 404
    assert desk.client.get(f"{QA}/calls/{rid}").status_code == 401
    assert [e.action for e in desk.audit()] == ["qa-flag-confirm"]  # refusals change nothing


def test_invalid_transitions_are_409_and_missing_comments_422(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    url = f"{QA}/flags/{flag['id']}"
    early = desk.call(
        "POST", f"{url}/decide", "sup1", {"action": "uphold", "comment": "no, not so"}
    )
    assert early.status_code == 409
    assert early.headers["content-type"] == "application/problem+json"
    assert early.json()["detail"] == (
        "a flag that is open cannot be upheld; only an appealed one can"
    )
    no_reason = desk.call("POST", f"{url}/review", "qa1", {"action": "dismiss", "comment": " "})
    assert no_reason.status_code == 422 and "comment is required" in no_reason.json()["detail"]
    assert desk.call("POST", f"{url}/review", "qa1", {"action": "confirm"}).status_code == 200
    again = desk.call(
        "POST", f"{url}/review", "sup1", {"action": "dismiss", "comment": "no, not so"}
    )
    assert again.status_code == 409 and "is confirmed" in again.json()["detail"]
    bad = desk.call("POST", f"{url}/review", "qa1", {"action": "approve"})
    assert bad.status_code == 422
    assert (
        desk.call("POST", f"{QA}/flags/999999/review", "qa1", {"action": "confirm"}).status_code
        == 404
    )
    assert desk.threat_flag(rid)["state"] == "confirmed"
    assert [e.action for e in desk.audit()] == ["qa-flag-confirm"]


def test_weekly_sample_is_reproducible_from_its_seed_and_drawn_once(desk: Desk) -> None:
    made: list[SampleCall] = []
    stage = {"bank-a": "early", "bank-b": "late"}
    with desk.services.sessions() as session:
        upsert(
            session,
            [DebtorIn(b, "D-1", "Li Lei", s, "Asia/Shanghai", (), ()) for b, s in stage.items()],
            Sealer(desk.services.keys, os.urandom(32)),
            T0,
        )
        session.commit()
        for i in range(30):  # week 2026-W48 (Mon 23 Nov - Sun 29 Nov, Shanghai)
            agent = "agent7" if i % 3 else "agent8"
            bank = "bank-a" if i % 4 else "bank-b"
            row = add_recording(session, agent, recorded_at=T0 + timedelta(hours=i), client_id=bank)
            made.append(SampleCall(row.id, agent, stage[bank]))  # the stage of bank's debtor D-1
        add_recording(session, "agent7", recorded_at=T0 + timedelta(days=7))  # next week
    body = {"week": "2026-W48", "seed": "qa-2026-w48"}
    assert desk.call("POST", f"{QA}/samples", "qa1", body).status_code == 403
    drawn = desk.call("POST", f"{QA}/samples", "sup1", body)
    assert drawn.status_code == 201
    sample = drawn.json()
    assert sample["seed"] == "qa-2026-w48" and sample["drawn_by"] == "sup1"
    expected = draw_sample(made, "qa-2026-w48")
    assert [(c["recording_id"], c["stratum"]) for c in sample["calls"]] == [
        (c.id, c.stage) for c in expected
    ]
    per_agent = {a: sum(c["agent"] == a for c in sample["calls"]) for a in ("agent7", "agent8")}
    assert per_agent == {"agent7": 4, "agent8": 4}  # 5% of 20 and of 10 is below the minimum
    assert {c["stratum"] for c in sample["calls"] if c["agent"] == "agent7"} == {"early", "late"}

    again = desk.call("POST", f"{QA}/samples", "admin1", {"week": "2026-W48"})
    assert again.status_code == 409 and "qa-2026-w48" in again.json()["detail"]
    shown = desk.call("GET", f"{QA}/samples?week=2026-W48", "qa1")
    assert shown.status_code == 200 and shown.json() == sample
    assert desk.call("GET", f"{QA}/samples?week=2026-W49", "qa1").status_code == 404
    assert desk.call("GET", f"{QA}/samples?week=2026-W48", "agent7").status_code == 403
    assert desk.call("POST", f"{QA}/samples", "sup1", {"week": "2026-W54"}).status_code == 422

    entries = [e for e in desk.audit() if e.action == "qa-sample"]
    assert len(entries) == 1 and entries[0].target == "2026-W48"
    detail = json.loads(entries[0].detail)
    assert detail["seed"] == "qa-2026-w48" and detail["calls"] == 30
    assert detail["drawn"] == [c.id for c in expected]


def test_generated_seed_is_returned_and_recorded(desk: Desk) -> None:
    with desk.services.sessions() as session:
        for i in range(6):
            add_recording(session, "agent7", recorded_at=T0 + timedelta(hours=i))
    drawn = desk.call("POST", f"{QA}/samples", "sup1", {"week": "2026-W48"}).json()
    assert len(drawn["seed"]) == 16 and len(drawn["calls"]) == 4
    detail = json.loads(next(e.detail for e in desk.audit() if e.action == "qa-sample"))
    assert detail["seed"] == drawn["seed"]


def test_per_agent_weekly_scores(desk: Desk) -> None:
    w48 = datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    w49 = datetime(2026, 12, 1, 9, 0, tzinfo=SH)
    bad = desk.scored_call(THREAT, "agent7", w48)
    desk.scored_call(CLEAN, "agent7", w48)
    desk.scored_call(CLEAN, "agent7", w49)
    desk.scored_call(THREAT, "agent8", w49, client="bank-b")
    clean_score = desk.call("GET", f"{QA}/calls/{desk.scored_call(CLEAN, 'agent8', w48)}", "qa1")
    clean = clean_score.json()["score"]
    threat = desk.call("GET", f"{QA}/calls/{bad}", "qa1").json()["score"]
    assert threat == clean - 40

    weeks = desk.call("GET", f"{QA}/scores?agent=agent7", "sup1").json()["weeks"]
    assert weeks == [
        {
            "agent": "agent7",
            "week": "2026-W48",
            "calls": 2,
            "average": (threat + clean) / 2,
            "machine_average": (threat + clean) / 2,
        },
        {
            "agent": "agent7",
            "week": "2026-W49",
            "calls": 1,
            "average": clean,
            "machine_average": clean,
        },
    ]
    # dismissing the flag raises agent7's week 48 trend; the machine's figure stays
    flag = desk.threat_flag(bad)
    desk.call(
        "POST",
        f"{QA}/flags/{flag['id']}/review",
        "qa1",
        {"action": "dismiss", "comment": "ok, agreed"},
    )
    week48 = desk.call("GET", f"{QA}/scores?agent=agent7", "qa1").json()["weeks"][0]
    assert week48["average"] == clean and week48["machine_average"] == (threat + clean) / 2

    everyone = desk.call("GET", f"{QA}/scores", "sup1").json()["weeks"]
    assert [(w["agent"], w["week"]) for w in everyone] == [
        ("agent7", "2026-W48"),
        ("agent7", "2026-W49"),
        ("agent8", "2026-W48"),
        ("agent8", "2026-W49"),
    ]
    ranged = desk.call("GET", f"{QA}/scores?from=2026-11-30T00:00:00%2B08:00", "sup1").json()[
        "weeks"
    ]
    assert [(w["agent"], w["week"]) for w in ranged] == [
        ("agent7", "2026-W49"),
        ("agent8", "2026-W49"),
    ]
    # an agent sees only their own trend; an auditor only their client's calls
    assert desk.call("GET", f"{QA}/scores?agent=agent7", "agent8").status_code == 403
    own = desk.call("GET", f"{QA}/scores", "agent8").json()["weeks"]
    assert {w["agent"] for w in own} == {"agent8"}
    audited = desk.call("GET", f"{QA}/scores", "aud-b").json()["weeks"]
    assert [(w["agent"], w["week"]) for w in audited] == [("agent8", "2026-W49")]

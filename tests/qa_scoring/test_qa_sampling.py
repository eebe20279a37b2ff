"""The weekly review sample: repeatable from its seed, fair to every agent and stage."""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.accounts.users import create_user
from api.routes.qa import debtor_stages
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Number, Role, Sealer, upsert
from dialer.models import CallAttempt
from dialer.numbers import number_key
from qa_scoring.sampling import SampleCall, allocate, draw_sample, sample_size, stage_of
from recording.models import Recording
from tests.apps import make_app
from tests.factories import T0, add_recording


def calls(agent: str, count: int, stages: dict[str, int] | None = None) -> list[SampleCall]:
    """`count` calls for `agent`, split over `stages` (name -> count) when given."""
    made: list[SampleCall] = []
    plan = stages or {"bank-a": count}
    for stage, n in plan.items():
        made.extend(SampleCall(f"{agent}-{stage}-{i:03d}", agent, stage) for i in range(n))
    return made


WEEK = calls("agent1", 200, {"bank-a": 150, "bank-b": 40, "bank-c": 10}) + calls("agent2", 30)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0), (1, 1), (3, 3), (4, 4), (79, 4), (80, 4), (81, 5), (100, 5), (200, 10), (1000, 50)],
)
def test_sample_size_is_five_percent_but_at_least_four(count: int, expected: int) -> None:
    assert sample_size(count) == expected


def test_same_seed_same_sample_whatever_the_input_order() -> None:
    first = draw_sample(WEEK, "2026-W48-a")
    again = draw_sample(list(reversed(WEEK)), "2026-W48-a")
    assert [c.id for c in first] == [c.id for c in again]


def test_different_seed_different_sample() -> None:
    a = {c.id for c in draw_sample(WEEK, "seed-1")}
    b = {c.id for c in draw_sample(WEEK, "seed-2")}
    assert a != b


def test_minimum_per_agent_and_all_calls_when_fewer() -> None:
    few = calls("agent3", 3)
    drawn = Counter(c.agent for c in draw_sample([*WEEK, *few], 7))
    assert drawn == {"agent1": 10, "agent2": 4, "agent3": 3}


def test_every_stage_is_represented_in_proportion() -> None:
    drawn = draw_sample(WEEK, "x")
    stages = Counter(c.stage for c in drawn if c.agent == "agent1")
    # 10 draws over 150/40/10 calls: 7.5/2/0.5 by proportion; the small stage still gets one
    assert stages == {"bank-a": 7, "bank-b": 2, "bank-c": 1}


def test_one_agents_late_call_does_not_reshuffle_the_others() -> None:
    before = [c.id for c in draw_sample(WEEK, "s") if c.agent == "agent1"]
    after = [c.id for c in draw_sample([*WEEK, *calls("agent2", 31)[-1:]], "s")]
    assert [i for i in after if i.startswith("agent1")] == before


@pytest.mark.parametrize(
    ("sizes", "total", "expected"),
    [
        ({"a": 50, "b": 50}, 4, {"a": 2, "b": 2}),
        ({"a": 90, "b": 9, "c": 1}, 4, {"a": 2, "b": 1, "c": 1}),
        ({"a": 90, "b": 10}, 1, {"a": 1, "b": 0}),  # fewer draws than stages: biggest first
        ({"a": 3, "b": 1}, 4, {"a": 3, "b": 1}),  # everything
        ({"a": 5}, 0, {"a": 0}),
    ],
)
def test_allocation(sizes: dict[str, int], total: int, expected: dict[str, int]) -> None:
    assert allocate(sizes, total) == expected
    assert sum(allocate(sizes, total).values()) == total


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        draw_sample(WEEK, 1, rate=0)


@pytest.mark.parametrize(
    ("candidates", "stage"),
    [
        ([], "unknown"),
        (["late"], "late"),
        (["late", "late"], "late"),  # one number on two accounts in the same stage
        (["early", "late"], "unknown"),  # the accounts disagree: no stage by chance
        (["", " "], "unknown"),
    ],
)
def test_stage_of_a_call(candidates: list[str], stage: str) -> None:
    assert stage_of(candidates) == stage


# --- the stage of a stored call, from its debtor (SQLite and PostgreSQL) ----------------------

SECRET = os.urandom(32)
EARLY_PHONE, LATE_PHONE, SHARED_PHONE = "+8613800138001", "+8613800138002", "+8613800138003"


def add_debtors(services: Services) -> None:
    """bank-a's A-1 in the early stage and bank-b's B-1 in the late one, sharing one number."""
    accounts = [
        ("bank-a", "A-1", "early", (EARLY_PHONE, SHARED_PHONE)),
        ("bank-b", "B-1", "late", (LATE_PHONE, SHARED_PHONE)),
    ]
    with services.sessions() as session:
        upsert(
            session,
            [
                DebtorIn(
                    client,
                    ext,
                    "Li Lei",
                    stage,
                    "Asia/Shanghai",
                    tuple(Number(Role.DEBTOR, n) for n in numbers),
                    (),
                )
                for client, ext, stage, numbers in accounts
            ],
            Sealer(services.keys, SECRET),
            T0,
        )
        session.commit()


def dialled(session: Session, recording: Recording, number: str) -> None:
    """The call attempt a softphone call leaves: it knows the number dialled, not the debtor."""
    session.add(
        CallAttempt(
            call_id=recording.id,
            sip_call_id=f"sip-{recording.id}",
            agent=recording.agent,
            number_key=number_key(SECRET, number),
            number_masked=number[:6] + "*****",
            debtor_id=None,
            started_at=recording.recorded_at,
            placed=True,
            answered=True,
            duration_s=recording.duration_s,
            sip_status=200,
            sip_reason="OK",
            ended_by="agent",
            recording_id=recording.id,
        )
    )
    session.commit()


def test_a_calls_stage_is_its_debtors(services: Services) -> None:
    add_debtors(services)
    with services.sessions() as session:
        cases: dict[str, str] = {}

        def call(expected: str, debtor: str | None, client: str | None, number: str = "") -> None:
            recording = add_recording(session, debtor_id=debtor, client_id=client)
            if number:
                dialled(session, recording, number)
            cases[recording.id] = expected

        call("early", "A-1", "bank-a")  # imported or placed for the account
        call("early", "A-1", None)  # no client on the recording: the account id alone
        call("unknown", "A-1", "bank-b")  # bank-b has no A-1
        call("unknown", "Z-9", "bank-a")  # an account the collection system never sent
        call("unknown", None, None)  # an outside recording with nothing to go by
        call("late", None, None, LATE_PHONE)  # a softphone call: through the number dialled
        call("late", "Z-9", "bank-b", LATE_PHONE)  # an unknown account id, a known number
        call("unknown", None, None, SHARED_PHONE)  # two accounts, two stages: no guess
        call("early", None, "bank-a", SHARED_PHONE)  # the recording's client settles it
        call("unknown", None, None, "+8613900000000")  # a number no debtor holds
        recordings = list(session.scalars(select(Recording)))
        assert debtor_stages(session, recordings) == cases


def test_weekly_sample_draws_from_every_stage(services: Services, engine: Engine) -> None:
    add_debtors(services)
    truth: dict[str, str] = {}
    with services.sessions() as session:
        user = create_user(session, "sup1", "supervisor", "a long passphrase", T0)
        token = issue_token(session, user, "test", T0)
        for i in range(30):  # 2026-W48; 24 early calls by account, 6 late ones by number
            at = T0 + timedelta(hours=i)
            if i % 5:
                recording = add_recording(session, "agent7", "A-1", at, "bank-a")
                truth[recording.id] = "early"
            else:
                recording = add_recording(session, "agent7", None, at, None)
                dialled(session, recording, LATE_PHONE)
                truth[recording.id] = "late"
    client = TestClient(make_app(services, engine))
    drawn = client.post(
        "/api/v1/qa/samples",
        json={"week": "2026-W48", "seed": "stages"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert drawn.status_code == 201, drawn.text
    sample = drawn.json()["calls"]
    # 4 draws (the minimum) over 24 and 6 calls: 3.2 and 0.8 by proportion
    assert Counter(c["stratum"] for c in sample) == {"early": 3, "late": 1}
    assert all(truth[c["recording_id"]] == c["stratum"] for c in sample)
    expected = draw_sample([SampleCall(rid, "agent7", s) for rid, s in truth.items()], "stages")
    assert [c["recording_id"] for c in sample] == [c.id for c in expected]

"""GET /api/v1/outcomes: the outcomes the webhook pushes, read back page by page, filtered,
and limited to the auditor's own client; on both databases.

Attempts are booked by the dialer's own `finish_call`; who was called is
found through the debtor records (the number's keyed hash), as in production.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.outcomes.webhooks import WebhookDelivery, queue_new, start_cursors
from api.web.auth import issue_token
from api.web.services import Services
from tests.api.test_webhooks import Desk, add_debtor, book, make_desk, no_full_number, score
from tests.apps import make_app
from tests.factories import T0

A = "+8613800138000"  # bank-a's ACC-1
B = "+8613900139000"  # bank-b's BCC-9
C = "+8613700137000"  # nobody's
SHARED_A = "+8613600136000"  # two debtors of bank-a
SHARED_AB = "+8613500135000"  # a debtor of bank-a and one of bank-b


class World:
    def __init__(self, client: TestClient, tokens: dict[str, str], desk: Desk) -> None:
        self.client, self.tokens, self.desk = client, tokens, desk
        self.ids: dict[str, list[int]] = {}

    def get(self, role: str, path: str, **params: Any) -> Any:
        answer = self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.tokens[role]}"}
        )
        return answer

    def ok(self, role: str, path: str, **params: Any) -> Any:
        answer = self.get(role, path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def listed(self, role: str, **params: Any) -> list[int]:
        """Every page, followed to the end: the attempt ids in order."""
        ids: list[int] = []
        offset: int | None = 0
        while offset is not None:
            page = self.ok(role, "/api/v1/outcomes", offset=offset, **params)
            ids += [o["attempt_id"] for o in page["outcomes"]]
            offset = page["next_offset"]
        return ids


@pytest.fixture
def world(services: Services, engine: Engine, tmp_path: Path) -> World:
    desk = make_desk(engine, tmp_path)
    app = make_app(replace(services, number_secret=desk.site.number_secret), engine)
    tokens = {}
    with services.sessions() as session:
        for username, role, client in (
            ("sup", "supervisor", None),
            ("adm", "admin", None),
            ("aud-a", "auditor", "bank-a"),
            ("aud-b", "auditor", "bank-b"),
            ("aud-none", "auditor", None),
            ("qa1", "qa", None),
            ("agent1", "agent", None),
        ):
            user = create_user(
                session, username, role, "a long passphrase", T0, client=client or "legacy"
            )
            user.client_id = client  # None: an account from before clients were required
            session.commit()
            tokens[username] = issue_token(session, user, "t", T0)
    add_debtor(desk, "bank-a", "ACC-1", "debtor:13800138000")
    add_debtor(desk, "bank-b", "BCC-9", "debtor:13900139000")
    add_debtor(desk, "bank-a", "ACC-2", "relative:13600136000")
    add_debtor(desk, "bank-a", "ACC-3", "debtor:13600136000")
    add_debtor(desk, "bank-a", "ACC-4", "employer:13500135000")
    add_debtor(desk, "bank-b", "BCC-5", "debtor:13500135000")
    world = World(TestClient(app, raise_server_exceptions=False), tokens, desk)
    plan = [
        ("A", A, "agent1"),
        ("B", B, "agent2"),
        ("A", A, "agent1"),
        ("C", C, "agent1"),
        ("SHARED_A", SHARED_A, "agent2"),
        ("A", A, "agent2"),
        ("SHARED_AB", SHARED_AB, "agent1"),
        ("B", B, "agent1"),
    ]
    for i, (name, number, agent) in enumerate(plan):
        attempt = book(
            desk,
            f"call{i:04d}",
            number,
            agent,
            answered=False,
            rule="window",
            at=T0 + timedelta(minutes=10 * i),
        )
        world.ids.setdefault(name, []).append(attempt)
    return world


def test_pages_cover_every_outcome_once_in_order(world: World) -> None:
    everything = sorted(i for ids in world.ids.values() for i in ids)
    page = world.ok("sup", "/api/v1/outcomes", limit=3)
    assert (len(page["outcomes"]), page["limit"], page["offset"], page["next_offset"]) == (
        3,
        3,
        0,
        3,
    )
    assert world.listed("sup", limit=3) == everything
    assert world.listed("adm", limit=500) == everything
    last = world.ok("sup", "/api/v1/outcomes", limit=3, offset=6)
    assert last["next_offset"] is None and len(last["outcomes"]) == 2
    for outcome in world.ok("sup", "/api/v1/outcomes", limit=500)["outcomes"]:
        assert no_full_number(json.dumps(outcome).encode())


def test_filters(world: World) -> None:
    ids = world.ids
    assert world.listed("sup", debtor="ACC-1") == ids["A"]
    assert world.listed("sup", agent="agent2") == sorted(
        ids["B"][:1] + ids["SHARED_A"] + ids["A"][2:]
    )
    assert world.listed("sup", client="bank-b") == ids["B"]
    # A number two debtors of one client share names the client, not a debtor.
    assert world.listed("sup", client="bank-a") == sorted(ids["A"] + ids["SHARED_A"])
    since = (T0 + timedelta(minutes=35)).isoformat()
    assert world.listed("sup", since=since) == sorted(
        ids["SHARED_A"] + ids["A"][2:] + ids["SHARED_AB"] + ids["B"][1:]
    )
    assert world.listed("sup", since=since, agent="agent1", client="bank-b") == ids["B"][1:]
    shared = world.ok("sup", f"/api/v1/outcomes/{ids['SHARED_A'][0]}")
    assert (shared["client"], shared["debtor_id"], shared["number_role"]) == ("bank-a", None, None)
    both = world.ok("sup", f"/api/v1/outcomes/{ids['SHARED_AB'][0]}")
    assert (both["client"], both["debtor_id"]) == (None, None)
    nobody = world.ok("sup", f"/api/v1/outcomes/{ids['C'][0]}")
    assert (nobody["client"], nobody["debtor_id"], nobody["number"]) == (
        None,
        None,
        "+86137****7000",
    )


def test_an_auditor_sees_only_their_own_clients_outcomes(world: World) -> None:
    ids = world.ids
    assert world.listed("aud-a") == sorted(ids["A"] + ids["SHARED_A"])
    assert world.listed("aud-b") == ids["B"]
    assert world.listed("aud-a", client="bank-a", agent="agent2") == sorted(
        ids["SHARED_A"] + ids["A"][2:]
    )
    refused = world.get("aud-a", "/api/v1/outcomes", client="bank-b")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert world.get("aud-a", f"/api/v1/outcomes/{ids['A'][0]}").status_code == 200
    for other in (ids["B"][0], ids["C"][0], ids["SHARED_AB"][0]):
        assert world.get("aud-a", f"/api/v1/outcomes/{other}").status_code == 404
    assert world.get("aud-none", "/api/v1/outcomes").status_code == 403
    for role in ("qa1", "agent1"):
        assert world.get(role, "/api/v1/outcomes").status_code == 403
        assert world.get(role, f"/api/v1/outcomes/{ids['A'][0]}").status_code == 403


def test_bad_input_is_refused(world: World) -> None:
    assert world.get("sup", "/api/v1/outcomes/999999").status_code == 404
    assert world.get("sup", "/api/v1/outcomes/0").status_code == 422
    assert world.get("sup", "/api/v1/outcomes/2147483648").status_code == 422  # past int32
    assert world.get("sup", "/api/v1/outcomes", limit=501).status_code == 422
    assert world.get("sup", "/api/v1/outcomes", agent="x' OR 1=1 --").status_code == 422
    assert world.get("sup", "/api/v1/outcomes", since="yesterday").status_code == 422


def test_the_api_shows_what_the_webhook_pushes_and_reads_are_audited(
    world: World, tmp_path: Path
) -> None:
    desk = world.desk
    start_cursors(desk.sessions)
    attempt = book(desk, "scored01", A, "agent1", tmp=tmp_path, at=T0 + timedelta(hours=2))
    result = score(desk, attempt)
    queue_new(desk.sessions)
    with desk.sessions() as session:
        body = session.scalar(
            select(WebhookDelivery.body).where(WebhookDelivery.attempt_id == attempt)
        )
    assert body is not None
    shown = world.ok("adm", f"/api/v1/outcomes/{attempt}")
    assert shown == json.loads(body)["outcome"]
    assert shown["qa"]["score"] == result.score and shown["recording_id"] is not None
    world.ok("aud-a", "/api/v1/outcomes", agent="agent1")
    with desk.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(["outcome-view", "outcomes-read"]))
        ).all()
    assert [(e.actor, e.action) for e in entries] == [
        ("adm", "outcome-view"),
        ("aud-a", "outcomes-read"),
    ]
    assert json.loads(entries[1].detail)["client"] == "bank-a"

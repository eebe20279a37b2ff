"""The HTTP API with real storage and databases: roles, Range playback, problems, audit."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.models import User
from api.accounts.users import create_user
from api.audit.chain import AuditEntry, verify
from api.web.auth import issue_token
from api.web.services import Services
from recording.models import Recording
from recording.store import CallInfo, fetch, spool_call, upload_pending
from tests.apps import make_app
from tests.audio import noise, write_wav
from tests.factories import T0, add_transcript


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of line noise on both sides: about 150 KB of Opus, three encryption chunks."""
    folder = tmp_path_factory.mktemp("api-capture")
    return write_wav(folder / "call.wav", [noise(60, 0.2, seed=3), noise(60, 0.2, seed=4)])


class World:
    def __init__(self, services: Services, engine: Engine, capture: Path) -> None:
        self.services = services
        self.client = TestClient(make_app(services, engine))
        self.tokens: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("agent7", "agent", None),
                ("agent9", "agent", None),
                ("sup1", "supervisor", None),
                ("aud-a", "auditor", "bank-a"),
                ("aud-b", "auditor", "bank-b"),
            ):
                user = create_user(session, name, role, "a long passphrase", T0)
                user.client_id = client
                session.commit()
                self.tokens[name] = issue_token(session, user, "test", T0)
        info = CallInfo("call-1", "agent7", T0, debtor_id="D-1", client_id="bank-a")
        self.recording = spool_call(
            services.sessions, services.spool, services.keys, capture, info, 730, T0
        )
        upload_pending(services.sessions, services.spool, services.copies, T0)
        with services.sessions() as session:
            add_transcript(session, self.recording.id, [("agent", 0.2, "This call is recorded.")])
        plain = io.BytesIO()
        fetch(
            services.sessions,
            services.spool,
            services.copies,
            services.keys,
            self.recording.id,
            plain,
        )
        self.audio = plain.getvalue()

    def get(self, url: str, who: str | None, headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.get(url, headers=headers)

    def audits(self) -> list[AuditEntry]:
        with self.services.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


@pytest.fixture
def world(services: Services, engine: Engine, capture: Path) -> Iterator[World]:
    yield World(services, engine, capture)


def test_no_token_and_bad_token_are_401_problems(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer dg_forged"}, {"Authorization": "Basic x"}):
        response = world.client.get("/api/v1/transcripts/search?q=call", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


def test_search_by_role(world: World) -> None:
    ok = world.get("/api/v1/transcripts/search?q=recorded", "qa1")
    assert ok.status_code == 200
    body = ok.json()
    assert [(h["recording_id"], h["start"]) for h in body["hits"]] == [(world.recording.id, 0.2)]
    assert "<mark>recorded</mark>" in body["hits"][0]["snippet"]
    assert world.get("/api/v1/transcripts/search?q=x", "agent7").status_code == 403
    own = world.get("/api/v1/transcripts/search?q=recorded", "aud-a").json()
    other = world.get("/api/v1/transcripts/search?q=recorded", "aud-b").json()
    assert len(own["hits"]) == 1 and other["hits"] == []
    assert world.get("/api/v1/transcripts/search?client=bank-a", "aud-b").status_code == 403
    assert [e.action for e in world.audits()] == ["search", "search", "search"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=1000", 422),
        ("offset=-1", 422),
        ("agent=../../etc", 422),
        ("q=" + "x" * 300, 422),
        ("q=%27%3B+DROP+TABLE+recordings%3B--", 200),
        ("q=%3Cscript%3E", 200),
    ],
)
def test_bad_search_input_is_rejected_or_harmless(world: World, query: str, status: int) -> None:
    response = world.get(f"/api/v1/transcripts/search?{query}", "qa1")
    assert response.status_code == status
    with world.services.sessions() as session:
        assert session.scalar(select(Recording.id)) == world.recording.id


def test_full_playback_and_range_seek(world: World) -> None:
    rid = world.recording.id
    full = world.get(f"/api/v1/recordings/{rid}/audio?reason=QA+sample", "qa1")
    assert full.status_code == 200
    assert full.content == world.audio
    part = world.get(
        f"/api/v1/recordings/{rid}/audio?reason=QA+sample",
        "qa1",
        headers={"Range": "bytes=100-70099"},
    )
    assert part.status_code == 206
    assert part.content == world.audio[100:70100]
    assert part.headers["content-range"] == f"bytes 100-70099/{len(world.audio)}"
    tail = world.get(
        f"/api/v1/recordings/{rid}/audio?reason=QA+seek", "qa1", headers={"Range": "bytes=-500"}
    )
    assert tail.content == world.audio[-500:]
    bad = world.get(
        f"/api/v1/recordings/{rid}/audio?reason=QA+seek",
        "qa1",
        headers={"Range": f"bytes={len(world.audio)}-"},
    )
    assert bad.status_code == 416
    plays = [e for e in world.audits() if e.action == "play"]
    assert (plays[0].actor, plays[0].target, plays[0].reason) == ("qa1", rid, "QA sample")


def test_download_needs_a_reason_and_is_audited(world: World) -> None:
    rid = world.recording.id
    assert world.get(f"/api/v1/recordings/{rid}/audio?download=true", "sup1").status_code == 422
    got = world.get(
        f"/api/v1/recordings/{rid}/audio?download=true&reason=client+request+42", "sup1"
    )
    assert got.status_code == 200
    assert got.headers["content-disposition"] == f'attachment; filename="{rid}.ogg"'
    (entry,) = [e for e in world.audits() if e.action == "download"]
    assert (entry.actor, entry.reason) == ("sup1", "client request 42")


@pytest.mark.parametrize(
    ("who", "status"), [("agent7", 206), ("agent9", 404), ("aud-b", 404), ("aud-a", 206)]
)
def test_who_may_hear_a_recording(world: World, who: str, status: int) -> None:
    """An agent hears their own calls, an auditor their client's; others learn nothing."""
    url = f"/api/v1/recordings/{world.recording.id}/audio?reason=review"
    response = world.get(url, who, headers={"Range": "bytes=0-9"})
    assert response.status_code == status


@pytest.mark.parametrize("bad_id", ["..%2F..%2Fetc%2Fpasswd", "nothex", "0" * 31, "A" * 32])
def test_ids_are_validated(world: World, bad_id: str) -> None:
    response = world.get(f"/api/v1/recordings/{bad_id}/audio?reason=x-y-z", "qa1")
    assert response.status_code in {404, 422}


def test_unknown_recording_is_404_problem(world: World) -> None:
    response = world.get(f"/api/v1/recordings/{'0' * 32}/audio?reason=review", "qa1")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_audit_chain_detects_edits_and_removals(world: World) -> None:
    for q in ("one", "two", "three"):
        world.get(f"/api/v1/transcripts/search?q={q}", "qa1")
    with world.services.sessions() as session:
        assert verify(session) == []
        second = session.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
        assert second is not None
        second.target = "something else"
        session.commit()
        assert [p.seq for p in verify(session)] == [2]
        session.delete(second)
        session.commit()
        problems = verify(session)
        assert problems and problems[0].problem.startswith("entries 2..2 are missing")


def test_openapi_documents_the_endpoints(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert {
        "/api/v1/transcripts/search",
        "/api/v1/recordings/{recording_id}/audio",
        "/healthz",
    } <= set(spec["paths"])
    assert isinstance(User, type)


def _post(world: World, url: str, who: str, body: dict[str, object]) -> Any:
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    return world.client.post(url, headers=headers, json=body)


def test_legal_hold_by_supervisor_only(world: World) -> None:
    url = f"/api/v1/recordings/{world.recording.id}/legal-hold"
    assert _post(world, url, "qa1", {"on": True, "reason": "x-y-z"}).status_code == 403
    held = _post(world, url, "sup1", {"on": True, "reason": "court order 7"})
    assert held.status_code == 200 and held.json()["legal_hold"] is True
    assert _post(world, url, "sup1", {"on": False}).status_code == 422
    assert [e.action for e in world.audits()][-1] == "legal-hold-on"


def test_retention_cannot_be_shortened_over_the_api(world: World) -> None:
    url = f"/api/v1/recordings/{world.recording.id}/retention"
    with world.services.sessions() as session:
        admin = create_user(session, "admin1", "admin", "a long passphrase", T0)
        world.tokens["admin1"] = issue_token(session, admin, "test", T0)
    sooner = _post(world, url, "admin1", {"until": "2027-01-01T00:00:00Z", "reason": "tidy up"})
    assert sooner.status_code == 409
    assert "can only be extended" in sooner.json()["detail"]
    later = _post(world, url, "admin1", {"until": "2030-01-01T00:00:00Z", "reason": "client"})
    assert later.status_code == 200
    assert later.json()["retain_until"].startswith("2030-01-01")
    assert (
        _post(world, url, "sup1", {"until": "2031-01-01T00:00:00Z", "reason": "x-y-z"}).status_code
        == 403
    )

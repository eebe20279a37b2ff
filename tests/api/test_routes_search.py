"""Transcript search over HTTP: tokens, roles and client scope, hostile input, the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.audit.chain import AuditEntry, verify
from api.web.services import Services
from recording.models import Recording
from tests.api.recorded import World
from tests.audio import noise, write_wav


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of line noise on both sides: about 150 KB of Opus, three encryption chunks."""
    folder = tmp_path_factory.mktemp("api-capture")
    return write_wav(folder / "call.wav", [noise(60, 0.2, seed=3), noise(60, 0.2, seed=4)])


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

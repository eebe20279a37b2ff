"""The recordings API with real storage and databases: roles, Range playback, problems, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from api.accounts.models import User
from api.accounts.users import create_user
from api.web.auth import issue_token
from api.web.services import Services
from tests.api.recorded import World
from tests.audio import noise, write_wav
from tests.factories import T0


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of line noise on both sides: about 150 KB of Opus, three encryption chunks."""
    folder = tmp_path_factory.mktemp("api-capture")
    return write_wav(folder / "call.wav", [noise(60, 0.2, seed=3), noise(60, 0.2, seed=4)])


@pytest.fixture
def world(services: Services, engine: Engine, capture: Path) -> Iterator[World]:
    yield World(services, engine, capture)


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

"""One export rule for the API and the console, playbacks audited once, retention within reason,
the end of a client's contract, and retrieval requests scoped to the requester's client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from api.accounts.totp import code_at
from api.accounts.users import create_user
from api.cli.main import main
from api.recordings.access import DOWNLOADERS, PLAYERS
from api.recordings.contracts import end_contract
from api.web.auth import issue_token
from api.web.services import Services
from tests.api.console_site import Console
from tests.api.recorded import World
from tests.audio import noise, write_wav
from tests.factories import T0, add_recording


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export-capture")
    return write_wav(folder / "call.wav", [noise(20, 0.2, seed=5), noise(20, 0.2, seed=6)])


@pytest.fixture
def world(services: Services, engine: Engine, capture: Path) -> Iterator[World]:
    limited = replace(services, client_retention_max={"bank-a": 1095})
    made = World(limited, engine, capture)
    with limited.sessions() as session:
        admin = create_user(session, "admin1", "admin", "a long passphrase", T0)
        made.tokens["admin1"] = issue_token(session, admin, "test", T0)
    yield made


def _audio(world: World, who: str, **params: Any) -> Any:
    url = f"/api/v1/recordings/{world.recording.id}/audio"
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    if "range" in params:
        headers["Range"] = params.pop("range")
    return world.client.get(url, params=params, headers=headers)


@pytest.mark.parametrize(
    ("who", "play", "download"),
    [
        ("qa1", 200, 403),
        ("aud-a", 200, 403),  # the client's auditor plays its calls; copies go through a supervisor
        ("aud-b", 404, 403),  # another client's: no such recording for them
        ("agent7", 200, 403),
        ("agent9", 404, 403),
        ("sup1", 200, 200),
        ("admin1", 200, 200),
    ],
)
def test_one_rule_for_who_plays_and_who_downloads(
    world: World, who: str, play: int, download: int
) -> None:
    assert _audio(world, who, reason="complaint 42").status_code == play
    assert _audio(world, who, reason="complaint 42", download="true").status_code == download
    assert _audio(world, who).status_code == 422  # a reason for both
    assert _audio(world, who, reason="   ", download="true").status_code in (403, 422)


def test_the_console_offers_download_to_the_same_roles(console: Console) -> None:
    assert {r.value for r in DOWNLOADERS} == {"supervisor", "admin"}
    assert {r.value for r in PLAYERS} == {"qa", "auditor", "agent", "supervisor", "admin"}
    for who, offered in (("qa1", False), ("aud-b", False), ("sup1", True)):
        browser = console.supervisor(who) if who == "sup1" else console.logged_in(who)
        page = browser.get(f"/calls/{console.recording.id}", params={"reason": "complaint 42"})
        if who == "aud-b":
            assert page.status_code == 404
            continue
        assert page.status_code == 200
        assert ('id="download"' in page.text) is offered, who


def test_a_playback_is_audited_once_however_many_ranges(world: World) -> None:
    playback = "pb-" + "a" * 20
    for span in ("bytes=0-999", "bytes=1000-", "bytes=-500"):
        part = _audio(world, "qa1", reason="QA sample", playback=playback, range=span)
        assert part.status_code == 206
    plays = [e for e in world.audits() if e.action == "play"]
    assert len(plays) == 1 and plays[0].reason == "QA sample"
    assert _audio(world, "qa1", reason="QA sample", playback="pb-" + "b" * 20).status_code == 200
    assert len([e for e in world.audits() if e.action == "play"]) == 2  # a new playback
    reused = _audio(world, "sup1", reason="mine now", playback=playback)
    assert reused.status_code == 409  # another person's playback id is not a free pass
    assert _audio(world, "qa1", reason="no id").status_code == 200
    assert _audio(world, "qa1", reason="no id").status_code == 200
    assert len([e for e in world.audits() if e.action == "play"]) == 4  # without one: each


def test_the_call_page_gives_its_player_one_playback(console: Console) -> None:
    page = console.logged_in("qa1").get(
        f"/calls/{console.recording.id}", params={"reason": "complaint 42"}
    )
    src = re.search(r'<audio id="player"[^>]*src="([^"]+)"', page.text)
    assert src is not None and "playback=" in src.group(1)


def _retain(world: World, until: str, who: str = "admin1", reason: str = "client asks") -> Any:
    return world.client.post(
        f"/api/v1/recordings/{world.recording.id}/retention",
        json={"until": until, "reason": reason},
        headers={"Authorization": f"Bearer {world.tokens[who]}"},
    )


def test_retention_has_a_site_and_a_client_maximum(world: World) -> None:
    # bank-a's maximum is 1095 days after the recording (2026-11-24): 2029-11-23
    too_far = _retain(world, "9972-01-01T00:00:00Z")
    assert too_far.status_code == 409 and "at most 1095 days" in too_far.json()["detail"]
    assert _retain(world, "2029-12-01T00:00:00Z").status_code == 409
    assert _retain(world, "2029-11-01T00:00:00Z").status_code == 200
    app: Any = world.client.app
    app.state.services = replace(world.services, client_retention_max={})
    site = _retain(world, "2037-01-01T00:00:00Z")  # past the site's ten years
    assert site.status_code == 409 and "at most 3650 days" in site.json()["detail"]
    assert _retain(world, "2030-01-01T00:00:00Z", reason="\x00\x00\x00").status_code == 422
    assert _retain(world, "2030-01-01T00:00:00Z", reason="   ").status_code == 422


def test_an_ended_contract_refuses_extensions_without_a_legal_hold(world: World) -> None:
    with world.services.sessions() as session:
        ended = end_contract(session, "bank-a", "admin1", "commission ended", T0)
    assert ended.recordings == 1 and ended.delete_after == T0 + timedelta(days=730)
    refused = _retain(world, "2029-01-01T00:00:00Z")
    assert refused.status_code == 409 and "contract ended" in refused.json()["detail"]
    held = world.client.post(
        f"/api/v1/recordings/{world.recording.id}/legal-hold",
        json={"on": True, "reason": "court order 7"},
        headers={"Authorization": f"Bearer {world.tokens['sup1']}"},
    )
    assert held.status_code == 200
    assert _retain(world, "2029-01-01T00:00:00Z").status_code == 200  # under a legal hold
    assert ("admin1", "contract-ended") in [(e.actor, e.action) for e in world.audits()]


def test_the_cli_ends_a_contract_once(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIALGUARD_DATABASE_URL", database_url)
    monkeypatch.setenv("DIALGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIALGUARD_LANGUAGE", "en")  # the CLI's words are asserted in English
    assert main(["clients", "end-contract", "bank-b", "--reason", "  "]) == 1
    assert main(["clients", "end-contract", "bank-b", "--reason", "commission ended"]) == 0
    assert "the contract of bank-b has ended" in capsys.readouterr().out
    assert main(["clients", "end-contract", "bank-b", "--reason", "again please"]) == 0
    assert "ended on" in capsys.readouterr().out  # once only


def test_an_admin_ends_a_contract_from_the_console(console: Console) -> None:
    with console.services.sessions() as session:
        create_user(session, "root1", "admin", "a long passphrase", T0)
    secret = console.enroll("root1")
    admin = console.logged_in("root1", code_at(secret, console.clock().timestamp()))
    page = admin.get("/admin/clients")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf is not None
    form = {"client": "bank-a", "reason": "commission ended", "csrf": csrf.group(1)}
    unconfirmed = admin.post("/admin/clients/end", data=form | {"confirm": "bank-x"})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
    done = admin.post("/admin/clients/end", data=form | {"confirm": "bank-a"})
    assert done.status_code == 200 and "the contract of bank-a has ended" in done.text
    assert 'class="ended"' in admin.get("/admin/clients").text


def test_retrieval_requests_are_scoped_to_the_requesters_client(world: World) -> None:
    with world.services.sessions() as session:
        other = add_recording(session, client_id="bank-b").id
    unknown = "f" * 32

    def ask(who: str, recording_id: str) -> Any:
        return world.client.post(
            "/api/v1/retrieval-requests",
            json={"subject": "ACC-9", "reason": "bank asks", "recording_id": recording_id},
            headers={"Authorization": f"Bearer {world.tokens[who]}"},
        )

    theirs, missing = ask("aud-a", other), ask("aud-a", unknown)
    assert theirs.status_code == missing.status_code == 422
    assert theirs.json()["detail"].replace(other, "ID") == missing.json()["detail"].replace(
        unknown, "ID"
    )
    assert ask("aud-a", world.recording.id).status_code == 201
    asked = ask("aud-b", other)
    assert asked.status_code == 201
    answer = world.client.post(
        f"/api/v1/retrieval-requests/{asked.json()['id']}/fulfil",
        json={"recording_id": world.recording.id},  # bank-a's, for bank-b's auditor
        headers={"Authorization": f"Bearer {world.tokens['sup1']}"},
    )
    assert answer.status_code == 422 and "not of bank-b" in answer.json()["detail"]


def test_an_auditor_account_always_has_a_client(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIALGUARD_DATABASE_URL", database_url)
    monkeypatch.setenv("DIALGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIALGUARD_LANGUAGE", "en")  # the CLI's words are asserted in English
    args = ["admin", "create-user", "aud.li", "--role", "auditor", "--password-stdin"]
    monkeypatch.setattr("sys.stdin", _Lines("a long passphrase\n"))
    assert main(args) == 1
    assert "give the client id" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Lines("a long passphrase\n"))
    assert main([*args, "--client", "bank-a"]) == 0
    assert "created auditor aud.li of client bank-a" in capsys.readouterr().out


class _Lines:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self.lines.pop(0) if self.lines else ""


def test_the_client_maxima_are_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from api.settings import Settings

    monkeypatch.setenv("DIALGUARD_CLIENT_RETENTION", "bank-b=1825")
    monkeypatch.setenv("DIALGUARD_CLIENT_RETENTION_MAX", "bank-b=1095")
    with pytest.raises(ValidationError, match="below its retention"):
        Settings()
    monkeypatch.setenv("DIALGUARD_CLIENT_RETENTION_MAX", "bank-b=4000")
    with pytest.raises(ValidationError, match="above DIALGUARD_RETENTION_MAX_DAYS"):
        Settings()
    monkeypatch.setenv("DIALGUARD_CLIENT_RETENTION_MAX", "bank-b=2000")
    assert Settings().max_retention_days("bank-b") == 2000
    assert Settings().max_retention_days("bank-c") == 3650

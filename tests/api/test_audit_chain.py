"""The audit chain against an insider: each tampering named by `dialguard audit verify` and the API.

Thirteen entries are written with the audit key, with anchors in the WORM
bucket after entries 5, 10 and 13. Then the database is tampered with as
someone holding it would: an edit, a deletion, a recomputed chain (hashes
redone without the key), a cut tail, and a rewrite with the key (hashes and
MACs redone). Each must be named: the first entry that does not match, and
the last anchor that still holds (the one after entry 5).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.accounts.users import create_user
from api.audit.anchors import PREFIX, Anchorer, AnchorStore, write_anchor
from api.audit.chain import (
    GENESIS,
    AuditEntry,
    check,
    entry_hash,
    entry_mac,
    record,
    with_audit_key,
)
from api.cli.main import main
from api.web.auth import issue_token
from api.web.services import Services
from recording.db.engine import session_factory
from tests.apps import make_app
from tests.factories import T0

KEY = b"k" * 32
Tamper = Callable[[Session], None]


class Trail:
    """A keyed audit log with anchors, the API over it, and `dialguard audit verify` on it."""

    def __init__(self, services: Services, engine: Engine, tmp: Path, database_url: str) -> None:
        self.plain: sessionmaker[Session] = session_factory(engine)  # what an insider has
        self.sessions = with_audit_key(self.plain, KEY)
        self.services = replace(services, sessions=self.sessions, audit_key=KEY)
        self.store = AnchorStore(services.copies[0])
        self.key_file = tmp / "audit-key"
        self.key_file.write_bytes(KEY)
        self.key_file.chmod(0o600)
        self.database_url = database_url
        self.tokens: dict[str, str] = {}
        with self.sessions() as session:
            for name, role, client in (("adm", "admin", None), ("aud-a", "auditor", "bank-a")):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                self.tokens[name] = issue_token(session, user, "t", T0)
        self.client = TestClient(make_app(self.services, engine))
        for i in range(1, 14):
            with self.sessions() as session:
                record(
                    session,
                    f"sup{i % 3}",
                    "play",
                    "bank-a" if i % 4 == 0 else f"rec{i:02d}",
                    T0 + timedelta(minutes=i),
                    reason=f"complaint {i}",
                    detail={"n": i},
                )
            if i in (5, 10, 13):
                since = {5: 0, 10: 5, 13: 10}[i]
                write_anchor(self.sessions, self.store, T0 + timedelta(minutes=i), since)

    def tamper(self, change: Tamper) -> None:
        with self.plain() as session:
            change(session)
            session.commit()

    def cli(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
        target = self.services.copies[0].target
        for name, value in {
            "DIALGUARD_DATABASE_URL": self.database_url,
            "DIALGUARD_DATA_DIR": str(self.key_file.parent / "data"),
            "DIALGUARD_AUDIT_KEY_FILE": str(self.key_file),
            "DIALGUARD_S3_ENDPOINT": target.endpoint,
            "DIALGUARD_S3_ACCESS_KEY": target.access_key,
            "DIALGUARD_S3_SECRET_KEY": target.secret_key,
            "DIALGUARD_S3_BUCKET": target.bucket,
            "DIALGUARD_S3_REPLICA_BUCKET": self.services.copies[1].target.bucket,
            "DIALGUARD_LANGUAGE": "en",  # the report is asserted in English
        }.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        status = main(["audit", "verify"])
        out = capsys.readouterr().out
        return f"exit {status}\n{out}"

    def api(self, who: str = "adm") -> Any:
        answer = self.client.get(
            "/api/v1/audit",
            params={"check": "true"},
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def trail(services: Services, engine: Engine, tmp_path: Path, database_url: str) -> Iterator[Trail]:
    yield Trail(services, engine, tmp_path, database_url)


def _entry(session: Session, seq: int) -> AuditEntry:
    found = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
    assert found is not None
    return found


def _rechain(session: Session, start: int, key: bytes | None) -> None:
    """Recompute every hash from `start` on (and, with the key, every MAC), as an insider would."""
    rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    prev, link = GENESIS, GENESIS
    for row in rows:
        if row.seq >= start:
            row.prev_hash = prev
            row.hash = entry_hash(
                prev, row.seq, row.at, row.actor, row.action, row.target, row.reason, row.detail
            )
            if key is not None:
                row.mac = entry_mac(key, link, row.hash)
        prev, link = row.hash, row.mac or row.hash
    session.flush()


def _assert_named(trail: Trail, cli: str, first_bad: int, problem: str) -> None:
    assert cli.startswith("exit 1"), cli
    assert problem in cli, cli
    assert f"first entry that does not match: {first_bad}" in cli, cli
    assert "last anchor that holds: entry 5," in cli, cli
    chain = trail.api()["chain"]
    assert chain["intact"] is False
    assert chain["first_bad_entry"] == first_bad
    assert chain["last_anchor_holding"]["seq"] == 5
    assert any(problem in p["problem"] for p in chain["problems"]), chain["problems"]


def test_an_untouched_log_verifies(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = trail.cli(monkeypatch, capsys)
    assert cli.startswith("exit 0") and "audit log intact" in cli, cli
    assert "last anchor that holds: entry 13," in cli
    chain = trail.api()["chain"]
    assert chain["intact"] is True and chain["macs_checked"] is True
    assert chain["anchors"] == 3 and chain["last_anchor_holding"]["seq"] == 13


def test_an_edit_is_named(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(session: Session) -> None:
        row = _entry(session, 7)
        row.actor, row.reason = "someone-else", "nothing to see"

    trail.tamper(edit)
    _assert_named(trail, trail.cli(monkeypatch, capsys), 7, "was edited after it was written")


def test_a_deletion_is_named(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trail.tamper(lambda session: session.delete(_entry(session, 7)))
    _assert_named(trail, trail.cli(monkeypatch, capsys), 7, "entries 7..7 are missing")


def test_a_recomputed_chain_is_named(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's attack: an edit, a deletion with the rest renumbered, every hash redone."""

    def rewrite(session: Session) -> None:
        row = _entry(session, 6)
        row.actor, row.reason = "someone-else", "routine check"
        session.delete(_entry(session, 7))
        session.flush()
        for seq in range(8, 14):
            _entry(session, seq).seq = seq - 1
            session.flush()
        _rechain(session, 6, key=None)

    trail.tamper(rewrite)
    cli = trail.cli(monkeypatch, capsys)
    _assert_named(trail, cli, 6, "MAC does not match")
    assert "differs from its anchor" in cli and "the log was cut after entry 12" in cli


def test_a_cut_tail_is_named(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def cut(session: Session) -> None:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 9))

    trail.tamper(cut)
    cli = trail.cli(monkeypatch, capsys)
    # the rest is a perfect chain: only the anchors know entries 9..13 existed
    _assert_named(trail, cli, 9, "the log was cut after entry 8")


def test_a_rewrite_with_the_key_is_caught_by_the_anchors(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def rewrite(session: Session) -> None:
        row = _entry(session, 7)
        row.reason = "a better story"
        row.detail = json.dumps({"n": 99})
        _rechain(session, 7, key=KEY)

    trail.tamper(rewrite)
    with trail.sessions() as session:
        assert check(session, KEY).intact  # hashes and MACs alone cannot tell
    # the running API anchors the rewritten head next: that anchor vouches for nothing
    write_anchor(trail.sessions, trail.store, T0 + timedelta(minutes=20), 13)
    _assert_named(trail, trail.cli(monkeypatch, capsys), 7, "differs from its anchor")


def test_an_auditor_verifies_their_own_entries(trail: Trail) -> None:
    page = trail.api("aud-a")
    assert page["chain"]["intact"] is True
    entries = page["entries"]
    assert entries and {e["target"] for e in entries} == {"bank-a"}  # only their client's
    for e in entries:  # each entry's hash recomputed from what the auditor was given
        at = e["at"].replace("Z", "+00:00")
        digest = entry_hash(
            e["prev_hash"],
            e["seq"],
            datetime.fromisoformat(at),
            e["actor"],
            e["action"],
            e["target"],
            e["reason"],
            e["detail_json"],
        )
        assert digest == e["hash"]


def test_legacy_entries_are_sealed_by_the_first_anchor(services: Services, engine: Engine) -> None:
    plain = session_factory(engine)
    keyed = with_audit_key(plain, KEY)
    for i in range(3):  # written before the MAC existed (as migrated from 0021)
        with plain() as session:
            record(session, "old", "play", f"r{i}", T0 + timedelta(minutes=i))
    store = AnchorStore(services.copies[0])
    first = write_anchor(keyed, store, T0 + timedelta(minutes=5))
    assert first is not None and first.legacy_until == 3
    with keyed() as session:
        record(session, "new", "play", "r9", T0 + timedelta(minutes=6))
    with keyed() as session:
        assert check(session, KEY, store.anchors()).intact
    with plain() as session:  # a process without the key writes after the MAC'd ones
        record(session, "stray", "play", "r10", T0 + timedelta(minutes=7))
    with keyed() as session:
        report = check(session, KEY, store.anchors())
    assert [(p.seq, p.problem) for p in report.problems] == [
        (5, "has no MAC: written without the audit key")
    ]
    # stripping every MAC to pass the log off as legacy: the anchor says where legacy ended
    with plain() as session:
        for row in session.scalars(select(AuditEntry)):
            row.mac = None
        session.commit()
    with keyed() as session:
        assert [p.seq for p in check(session, KEY, store.anchors()).problems] == [4, 5]


def test_the_api_process_anchors_at_start_and_at_shutdown(
    services: Services, engine: Engine
) -> None:
    keyed = with_audit_key(session_factory(engine), KEY)
    store = AnchorStore(services.copies[0])
    with keyed() as session:
        record(session, "sup1", "play", "r1", T0)
    anchorer = Anchorer(keyed, store, interval_s=3600)
    app = make_app(replace(services, sessions=keyed, audit_key=KEY), engine, anchorer=anchorer)
    with TestClient(app):
        assert [a.seq for a in store.anchors()] == [1]  # at start
        with keyed() as session:
            record(session, "sup1", "play", "r2", T0)
    assert [a.seq for a in store.anchors()] == [1, 2]  # at shutdown
    names = [
        o.object_name
        for o in services.copies[0].client.list_objects(
            services.copies[0].target.bucket, prefix=PREFIX, recursive=True
        )
    ]
    assert len(names) == 2
    (name,) = [n for n in names if n and n.startswith(f"{PREFIX}000000000002-")]
    retention = services.copies[0].client.get_object_retention(
        services.copies[0].target.bucket, name
    )
    assert retention is not None and retention.mode == "COMPLIANCE"


def test_the_key_file_is_created_once_with_0600(tmp_path: Path) -> None:
    from api.settings import Settings
    from api.wiring import audit_key

    settings = Settings(data_dir=tmp_path)
    assert audit_key(settings, create=False) is None
    key = audit_key(settings)
    path = tmp_path / "keys" / "audit-key"
    assert key is not None and len(key) == 32 and path.read_bytes() == key
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert audit_key(settings) == key

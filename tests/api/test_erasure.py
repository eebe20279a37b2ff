"""What was derived from a call goes with it: at the end of its recording's retention (the
transcript, its search rows, QA results and reviews), and after an ended contract's
delete-after date (the client's debtors too), audited with counts and nothing personal logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry, audit_to, verify
from api.recordings.contract_rules import Step
from api.recordings.contracts import ClientContract, end_contract
from api.recordings.erasure import end_contracts, forget_derived, retention_jobs, sweep_deleted
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Number, Role, Sealer, upsert
from qa_scoring.models import QaFlag, QaFlagEvent, QaResult
from qa_scoring.store import score_transcript
from recording.lifecycle import expire
from recording.models import Recording, RecordingStatus
from recording.store import CallInfo, spool_call, upload_pending
from tests.apps import make_app
from tests.audio import call_audio
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import SegmentRow, TranscriptRow

PACK = "cn-collections"
THREAT = [
    ("agent", 1.0, "您好，我是安信资产的催收员小王"),
    ("debtor", 4.0, "嗯"),
    ("agent", 10.0, "再不还就让你坐牢"),
]
WORDS = "让你坐牢"  # three characters or more: the trigram index
NAME = "王小明"
NUMBER = "+8613800138000"


class Desk:
    """The HTTP API over a test's real database and storage, with the users QA needs."""

    def __init__(self, services: Services, engine: Engine) -> None:
        self.services = dataclasses.replace(services, number_secret=os.urandom(32))
        self.client = TestClient(make_app(self.services, engine))
        self.tokens: dict[str, str] = {}
        with self.services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("sup1", "supervisor", None),
                ("aud-a", "auditor", "bank-a"),
            ):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                self.tokens[name] = issue_token(session, user, "test", T0)

    def get(self, url: str, who: str = "qa1", **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.get(url, params=params, headers=headers)

    def found(self, words: str = WORDS) -> set[str]:
        """The recordings a search for `words` finds, as a QA reviewer sees them."""
        answer = self.get("/api/v1/transcripts/search", q=words, limit=100)
        assert answer.status_code == 200, answer.text
        return {hit["recording_id"] for hit in answer.json()["hits"]}

    def scored(self, recording_id: str, at: datetime = T0) -> None:
        with self.services.sessions() as session:
            add_transcript(session, recording_id, THREAT)
            tid = session.scalar(
                select(TranscriptRow.id).where(TranscriptRow.recording_id == recording_id)
            )
            assert tid is not None
            score_transcript(session, tid, PACK, at)

    def review_a_flag(self, recording_id: str) -> None:
        flags = self.get(f"/api/v1/qa/calls/{recording_id}").json()["flags"]
        answer = self.client.post(
            f"/api/v1/qa/flags/{flags[0]['id']}/review",
            json={"action": "confirm"},
            headers={"Authorization": f"Bearer {self.tokens['qa1']}"},
        )
        assert answer.status_code == 200, answer.text

    def entries(self, action: str) -> list[AuditEntry]:
        with self.services.sessions() as session:
            return list(
                session.scalars(
                    select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
                )
            )

    def derived_rows(self, recording_id: str) -> int:
        with self.services.sessions() as session:
            return sum(
                int(session.scalar(select(func.count()).where(column == recording_id)) or 0)
                for column in (
                    TranscriptRow.recording_id,
                    SegmentRow.recording_id,
                    QaResult.recording_id,
                    QaFlag.recording_id,
                )
            )

    def debtor(self, client: str, account: str) -> int:
        return int(self.get(f"/api/v1/debtors/{client}/{account}", "sup1").status_code)


@pytest.fixture
def desk(services: Services, engine: Engine) -> Desk:
    return Desk(services, engine)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("erasure")
    return call_audio(folder / "c.wav", [("agent", 0.2, "This call is recorded.")], 3.0)


def _stored(services: Services, capture: Path, call_id: str, lock_seconds: float | None) -> str:
    """A recording in both buckets; with lock_seconds, locked only that long (two years on)."""
    now = datetime.now(UTC)
    info = CallInfo(call_id, "agent7", now, debtor_id="D-1", client_id="bank-a")
    row = spool_call(services.sessions, services.spool, services.keys, capture, info, 730, now)
    if lock_seconds is not None:
        until = (now + timedelta(seconds=lock_seconds)).replace(microsecond=0)
        with services.sessions() as session:
            session.execute(
                update(Recording).where(Recording.id == row.id).values(retain_until=until)
            )
            session.commit()
    assert upload_pending(services.sessions, services.spool, services.copies, now).stored
    return row.id


def _fts_matches(desk: Desk, words: str) -> int | None:
    """Rows of SQLite's trigram index that still match `words` (None on PostgreSQL, whose
    indexes are on the segment table itself)."""
    with desk.services.sessions() as session:
        if session.get_bind().dialect.name != "sqlite":
            return None
        found = session.scalar(
            text("SELECT count(*) FROM segment_tri WHERE segment_tri MATCH :q"), {"q": f'"{words}"'}
        )
        return int(found or 0)


def test_an_expired_recording_takes_its_transcript_and_qa_results_along(
    desk: Desk, capture: Path
) -> None:
    services = desk.services
    ending = _stored(services, capture, "ends", lock_seconds=3)
    kept = _stored(services, capture, "kept", lock_seconds=None)
    for recording_id in (ending, kept):
        desk.scored(recording_id)
    desk.review_a_flag(ending)
    assert desk.found() == {ending, kept}
    assert desk.get(f"/api/v1/qa/calls/{ending}").status_code == 200
    assert _fts_matches(desk, WORDS) in (2, None)

    time.sleep(4)
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    done = expire(services.sessions, services.copies, datetime.now(UTC), audit, forget_derived)
    assert [d.recording_id for d in done] == [ending]

    assert desk.found() == {kept}  # its words can no longer be found
    gone = desk.get(f"/api/v1/qa/calls/{ending}")
    assert gone.status_code == 404 and "not been scored" in gone.json()["detail"]
    assert desk.get(f"/api/v1/qa/calls/{kept}").status_code == 200
    scores = desk.get("/api/v1/qa/scores").json()["weeks"]
    assert sum(week["calls"] for week in scores) == 1  # only the kept call counts now
    assert desk.derived_rows(ending) == 0 and desk.derived_rows(kept) > 0
    assert _fts_matches(desk, WORDS) in (1, None)  # the search index let go of it too
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(QaFlagEvent)) == 0
        row = session.get(Recording, ending)
        assert row is not None and row.status is RecordingStatus.DELETED

    [proof] = desk.entries("recording-deleted")
    assert proof.actor == "retention-job" and proof.target == ending
    derived = json.loads(proof.detail)["derived_deleted"]
    assert derived["transcripts"] == 1 and derived["transcript_segments"] == 3
    assert derived["qa_results"] == 1 and derived["qa_flags"] >= 1
    assert derived["qa_flag_events"] == 1  # the review went with the flag
    with services.sessions() as session:
        assert verify(session) == []


def test_recordings_deleted_before_lose_what_was_left_of_them(desk: Desk) -> None:
    """A recording erased before this job existed, or a transcript stored after the erasure."""
    with desk.services.sessions() as session:
        old = add_recording(session)
        live = add_recording(session)
    desk.scored(old.id)
    desk.scored(live.id)
    with desk.services.sessions() as session:
        session.execute(
            update(Recording)
            .where(Recording.id == old.id)
            .values(status=RecordingStatus.DELETED, wrapped_dek=None, kek_id=None)
        )
        session.commit()
    assert desk.found() == {old.id, live.id}

    now = datetime.now(UTC)
    sweep, _contracts = retention_jobs(desk.services.sessions)  # what `dialguard up` runs
    assert sweep(now) == 1
    assert desk.found() == {live.id}
    assert desk.get(f"/api/v1/qa/calls/{old.id}").status_code == 404
    [entry] = desk.entries("derived-data-deleted")
    assert entry.target == old.id and entry.actor == "retention-job"
    assert json.loads(entry.detail)["transcripts"] == 1
    assert sweep_deleted(desk.services.sessions, now) == 0  # nothing twice
    assert len(desk.entries("derived-data-deleted")) == 1


def _debtors(desk: Desk, *accounts: tuple[str, str, str]) -> None:
    sealer = Sealer(desk.services.keys, desk.services.number_secret or b"")
    with desk.services.sessions() as session:
        upsert(
            session,
            [
                DebtorIn(client, account, NAME, "early", "Asia/Shanghai", numbers, ())
                for client, account, number in accounts
                for numbers in [(Number(Role.DEBTOR, number),)]
            ],
            sealer,
            T0,
        )
        session.commit()


def test_after_delete_after_the_clients_debtors_and_call_data_go(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    _debtors(
        desk,
        ("bank-a", "ACC-1", NUMBER),
        ("bank-a", "ACC-2", "+8613900139000"),
        ("bank-b", "ACC-9", "+8613700137000"),
    )
    with desk.services.sessions() as session:
        called = add_recording(session, client_id="bank-a").id
        held = add_recording(session, client_id="bank-a").id
        other = add_recording(session, client_id="bank-b").id
        session.execute(update(Recording).where(Recording.id == held).values(legal_hold=True))
        session.commit()
    for recording_id in (called, held, other):
        desk.scored(recording_id)
    desk.review_a_flag(called)
    with desk.services.sessions() as session:
        ended = end_contract(session, "bank-a", "admin1", "commission ended", T0)
    assert ended.delete_after == T0.replace(year=2028)  # the latest retention of bank-a

    sessions = desk.services.sessions
    assert end_contracts(sessions, ended.delete_after - timedelta(days=1)) == []
    assert desk.debtor("bank-a", "ACC-1") == 200  # until then the data is the agency's to use
    assert desk.found() == {called, held, other}

    caplog.set_level(logging.INFO)
    after = ended.delete_after + timedelta(hours=1)
    [first] = end_contracts(sessions, after)
    assert first.client_id == "bank-a" and first.step is Step.DELETE
    assert desk.debtor("bank-a", "ACC-1") == desk.debtor("bank-a", "ACC-2") == 404
    assert desk.debtor("bank-b", "ACC-9") == 200  # another client's stay
    assert desk.found() == {held, other}  # a legal hold keeps its evidence
    assert desk.get(f"/api/v1/qa/calls/{called}").status_code == 404
    assert desk.get(f"/api/v1/qa/calls/{held}").status_code == 200
    with sessions() as session:
        row = session.get(Recording, called)
        assert row is not None and row.status is RecordingStatus.STORED  # WORM: its own end
        contract = session.get(ClientContract, "bank-a")
        assert contract is not None and contract.data_deleted_at is not None

    [entry] = desk.entries("client-data-deleted")
    assert entry.actor == "retention-job" and entry.target == "bank-a"
    counts = json.loads(entry.detail)
    assert counts["debtors"] == 2 and counts["debtor_numbers"] == 2
    assert counts["recordings"] == 1 and counts["transcripts"] == 1
    assert counts["qa_results"] == 1 and counts["qa_flag_events"] == 1
    assert counts["kept_under_legal_hold"] == 1 and counts["pass"] == "delete"
    seen = desk.get("/api/v1/audit", "aud-a")  # the bank's own auditor can see it was done
    assert seen.status_code == 200, seen.text
    assert "client-data-deleted" in [e["action"] for e in seen.json()["entries"]]
    said = [r for r in caplog.records if r.name == "api.recordings.erasure"]
    assert said, "the deletion is logged"
    for record_ in said:
        line = json.dumps(record_.__dict__, default=str, ensure_ascii=False)
        assert NAME not in line and "13800138000" not in line and WORDS not in line

    # Idempotent: nothing left, nothing done, nothing audited again.
    [again] = end_contracts(sessions, after + timedelta(hours=1))
    assert again.step is Step.SWEEP and not any(again.counts.values()) and again.held == 1
    assert len(desk.entries("client-data-deleted")) == 1
    # A debtor the collection system sends later goes at the next pass, audited.
    _debtors(desk, ("bank-a", "ACC-3", NUMBER))
    [late] = end_contracts(sessions, after + timedelta(hours=2))
    assert late.counts["debtors"] == 1 and desk.debtor("bank-a", "ACC-3") == 404
    entries = desk.entries("client-data-deleted")
    assert len(entries) == 2 and json.loads(entries[1].detail)["pass"] == "sweep"
    with sessions() as session:
        assert verify(session) == []

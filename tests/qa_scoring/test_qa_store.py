"""Scoring stored transcripts: results and flags kept once, masked, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from qa_scoring.models import FlagState, QaFlag, QaResult
from qa_scoring.pack import load_pack
from qa_scoring.store import pending_transcripts, score_transcript
from qa_scoring.worker import run_qa_worker
from recording.db.engine import session_factory
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import SegmentRow, TranscriptRow

PACK = "cn-collections"
THREAT = [
    ("agent", 1.0, "您好，我是安信资产的催收员小王"),
    ("debtor", 4.0, "嗯"),
    ("agent", 10.0, "你的卡号6222021234567890123再不还就让你坐牢"),
]


def _transcript_id(engine: Engine, recording_id: str) -> int:
    with session_factory(engine)() as session:
        found = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == recording_id)
        )
    assert found is not None
    return found


def test_a_banned_phrase_becomes_an_open_flag_with_masked_text(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        recording = add_recording(session, agent="agent7")
        add_transcript(session, recording.id, THREAT)
    tid = _transcript_id(engine, recording.id)
    with sessions() as session:
        result = score_transcript(session, tid, PACK, T0)
    with sessions() as session:
        stored = session.get(QaResult, result.id)
        assert stored is not None
        assert stored.recording_id == recording.id and stored.pack == PACK
        assert stored.pack_version == str(load_pack(PACK).version)
        assert stored.score is not None and stored.score <= 60  # a level-4 violation fails a call
        assert stored.error is None
        flags = session.scalars(select(QaFlag).where(QaFlag.result_id == result.id)).all()
    threat = [f for f in flags if f.category == "intimidation"]
    assert len(threat) == 1
    flag = threat[0]
    assert flag.agent == "agent7" and flag.severity == 4 and flag.speaker == "agent"
    assert flag.start_s == 10.0 and flag.state is FlagState.OPEN
    assert "6222021234567890123" not in flag.text and "62220212" not in flag.text
    assert flag.text.endswith("0123再不还就让你坐牢")


def test_scoring_twice_stores_one_result(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        recording = add_recording(session)
        add_transcript(session, recording.id, THREAT)
    tid = _transcript_id(engine, recording.id)
    with sessions() as session:
        assert pending_transcripts(session, PACK) == [tid]
        first = score_transcript(session, tid, PACK, T0)
    with sessions() as session:
        second = score_transcript(session, tid, load_pack(PACK), T0)
        assert second.id == first.id
        assert session.scalar(select(func.count()).select_from(QaResult)) == 1
        flag_count = session.scalar(select(func.count()).select_from(QaFlag))
        assert flag_count == len(session.scalars(select(QaFlag)).all()) and flag_count
        assert pending_transcripts(session, PACK) == []
        # another pack has not scored it yet
        assert pending_transcripts(session, "en-collections") == [tid]


def test_worker_scores_new_transcripts_and_records_a_broken_one_once(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        good = add_recording(session, agent="agent7")
        add_transcript(session, good.id, THREAT)
        clean = add_recording(session, agent="agent8")
        add_transcript(session, clean.id, [("agent", 1.0, "您好")])
        broken = add_recording(session, agent="agent9")
        add_transcript(session, broken.id, [("agent", 1.0, "您好")])
    broken_tid = _transcript_id(engine, broken.id)
    with sessions() as session:  # a stored segment that ends before it starts
        segment = session.scalars(
            select(SegmentRow).where(SegmentRow.transcript_id == broken_tid)
        ).one()
        segment.end_s = 0.5
        session.commit()

    stop = threading.Event()
    scored: list[int] = []
    worker = threading.Thread(
        target=lambda: scored.append(run_qa_worker(sessions, PACK, stop, poll_s=0.05))
    )
    worker.start()
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            with sessions() as session:
                if session.scalar(select(func.count()).select_from(QaResult)) == 3:
                    break
            time.sleep(0.05)
        time.sleep(0.2)  # a few more polls: nothing is scored twice
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive() and scored == [3]
    with sessions() as session:
        results = {r.recording_id: r for r in session.scalars(select(QaResult))}
        assert set(results) == {good.id, clean.id, broken.id}
        assert results[broken.id].score is None
        assert "ends" in (results[broken.id].error or "")
        good_score, clean_score = results[good.id].score, results[clean.id].score
        assert good_score is not None and clean_score is not None
        assert good_score < clean_score  # the threat costs points
        assert pending_transcripts(session, PACK) == []

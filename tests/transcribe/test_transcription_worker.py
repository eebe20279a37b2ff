"""A recorded call goes through the queue and becomes searchable, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from recording.db.engine import session_factory
from recording.keys import FileKeyRing
from recording.store import CallInfo, Copy, fetch, spool_call, upload_pending
from tests.audio import call_audio
from tests.factories import T0
from transcribe.engine import load_model
from transcribe.model_store import resolve_model
from transcribe.models import JobStatus, TranscriptionJob, TranscriptRow
from transcribe.search import SearchQuery, search
from transcribe.worker import work_once


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_model(resolve_model("base", tmp_path_factory.mktemp("models")), "cpu")


def test_recorded_call_becomes_searchable_with_speaker_and_offset(
    engine: Engine, copies: tuple[Copy, Copy], model: Any, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    pair = copies
    keys = FileKeyRing(tmp_path / "kek.json")
    spool = tmp_path / "spool"
    capture = call_audio(
        tmp_path / "call.wav",
        [
            ("debtor", 0.3, "Hello?"),
            ("agent", 2.0, "This is Anna from Northwind Collections about your overdue card."),
        ],
        seconds=8.0,
    )
    recording = spool_call(sessions, spool, keys, capture, CallInfo("c-1", "agent7", T0), 730, T0)
    upload_pending(sessions, spool, pair, T0)

    def fetch_audio(recording_id: str, sink: BinaryIO) -> str:
        return fetch(sessions, spool, pair, keys, recording_id, sink)

    status = work_once(sessions, model, "base", "test", fetch_audio, threading.Event())
    assert "backlog 0 jobs" in status

    page = search(sessions(), SearchQuery(text="Northwind"))
    assert [(h.recording_id, h.speaker) for h in page.hits] == [(recording.id, "agent")]
    assert 1.5 <= page.hits[0].start <= 3.0
    with sessions() as session:
        row = session.scalar(select(TranscriptRow))
        assert row is not None and row.model == "base" and row.language == "en"

    # Running the queue again transcribes nothing twice.
    work_once(sessions, model, "base", "test", fetch_audio, threading.Event())
    with sessions() as session:
        assert len(session.scalars(select(TranscriptRow)).all()) == 1


def test_corrupt_audio_parks_its_job_and_the_queue_goes_on(
    engine: Engine, model: Any, tmp_path: Path
) -> None:
    from tests.factories import add_recording

    sessions = session_factory(engine)
    with sessions() as session:
        broken, fine = add_recording(session), add_recording(session)
    good = call_audio(tmp_path / "ok.wav", [("agent", 0.2, "Good morning.")], seconds=3.0)

    def fetch_audio(recording_id: str, sink: BinaryIO) -> None:
        sink.write(b"\x00garbage" * 50 if recording_id == broken.id else good.read_bytes())

    work_once(sessions, model, "base", "test", fetch_audio, threading.Event())
    with sessions() as session:
        jobs = {j.recording_id: j for j in session.scalars(select(TranscriptionJob))}
    assert jobs[broken.id].status is JobStatus.DEAD
    assert "not readable audio" in (jobs[broken.id].last_error or "")
    assert jobs[fine.id].status is JobStatus.DONE


def test_a_clients_language_is_used_instead_of_detection(
    engine: Engine, copies: tuple[Copy, Copy], model: Any, tmp_path: Path
) -> None:
    """English speech on a call of a client set to English, and one left to detection."""
    sessions = session_factory(engine)
    keys = FileKeyRing(tmp_path / "kek.json")
    spool = tmp_path / "spool"
    capture = call_audio(
        tmp_path / "call.wav",
        [("agent", 0.5, "Your payment of two hundred dollars is overdue.")],
        seconds=5.0,
    )
    calls = {}
    for client in ("bank-en", "bank-zh"):
        info = CallInfo(f"c-{client}", "agent7", T0, client_id=client)
        calls[client] = spool_call(sessions, spool, keys, capture, info, 730, T0).id
    upload_pending(sessions, spool, copies, T0)

    def fetch_audio(recording_id: str, sink: BinaryIO) -> str:
        return fetch(sessions, spool, copies, keys, recording_id, sink)

    languages = {"bank-en": "en", "bank-zh": "zh"}
    work_once(sessions, model, "base", "t", fetch_audio, threading.Event(), languages=languages)
    with sessions() as session:
        found = {row.recording_id: row.language for row in session.scalars(select(TranscriptRow))}
    # The client's setting wins over what the audio sounds like: a Chinese-speaking
    # client's calls are decoded as Chinese even when a line sounds English.
    assert found == {calls["bank-en"]: "en", calls["bank-zh"]: "zh"}

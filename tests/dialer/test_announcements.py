"""Carrier announcements in early media: kept when a call fails, heard, turned into evidence.

End to end: SIPp plays the carrier, answering the INVITE with 183 and an
announcement spoken by espeak-ng (8 kHz A-law over RTP), then a final failure;
the dialer process keeps the early media and books a job; the recogniser
transcribes it with real faster-whisper (multilingual base) against the
phrase book; the number's status or the caller ID's health follows. Both
database backends throughout.
"""

from __future__ import annotations

import os
import subprocess
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dialer.announcements import (
    MAX_EARLY_MEDIA_S,
    AnnouncementError,
    JobState,
    Recogniser,
    _requeue_stale,
    announcement_job,
    announcements_dir,
    keep_early_media,
    load_phrase_book,
)
from dialer.calls import CallRecord, Ended
from dialer.decision import caller_id_check
from dialer.models import Announcement, CallAttempt, NumberStatusEvent
from dialer.number_status import CALLER_BLOCKED, PhraseBook
from dialer.numbers import load_or_create_secret, number_key
from recording.db.engine import as_utc, session_factory
from tests.audio import RATE, noise, tone, write_wav
from tests.dialer.running import Parts, attempts, dialer, office_hours, wait_for
from tests.dialer.sip.test_b2bua import E164, PCAP, Carrier, SilentTrunk, agent, refused
from tests.helpers import DATA
from transcribe.engine import load_model
from transcribe.model_store import resolve_model

CALLER_ID = "+861058000000"  # the one caller ID of tests.dialer.running's dialer
OTHER = "13900001111"  # a second debtor's number, dialed as an agent would
NOT_FOUND = "The number you have dialed does not exist, please check the number and dial again."
BLOCKED = "Sorry, your call has been blocked. Please do not call this number again."

needs_sipp = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Multilingual base: carriers here speak Chinese and English."""
    return load_model(resolve_model("base", tmp_path_factory.mktemp("models")), "cpu")


def speech(text: str, path: Path) -> Path:
    """espeak-ng at 8 kHz mono WAV; slow (120 wpm) like a carrier's recorded voice."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ar",
            str(RATE),
            "-ac",
            "1",
            str(path),
        ],
        check=True,
    )
    raw.unlink()
    return path


def alaw(text: str, path: Path) -> tuple[Path, float]:
    """The announcement as SIPp's rtp_stream plays it: raw A-law, 8 kHz; and its length."""
    wav = speech(text, path.with_suffix(".wav"))
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            "-f",
            "alaw",
            "-ar",
            str(RATE),
            "-ac",
            "1",
            str(path),
        ],
        check=True,
    )
    return path, path.stat().st_size / RATE


def carrier_scenario(tmp_path: Path, text: str, final: str) -> tuple[Path, int]:
    """The announcing carrier's scenario with its audio and final response; (path, pause ms)."""
    audio, seconds = alaw(text, tmp_path / f"announcement-{final[:3]}.al")
    template = (DATA / "sipp" / "b2b_carrier_announce.xml").read_text()
    scenario = tmp_path / f"carrier-{final[:3]}.xml"
    scenario.write_text(
        template.replace("ANNOUNCEMENT_FILE", str(audio)).replace(
            "SIP/2.0 404 Not Found", f"SIP/2.0 {final}"
        )
    )
    return scenario, int(seconds * 1000) + 1500


def jobs(engine: Engine) -> list[Announcement]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Announcement).order_by(Announcement.id)))


def events(engine: Engine, key: str) -> list[NumberStatusEvent]:
    with session_factory(engine)() as session:
        return list(
            session.scalars(
                select(NumberStatusEvent)
                .where(NumberStatusEvent.number_key == key)
                .order_by(NumberStatusEvent.id)
            )
        )


def recogniser(parts: Parts, model: Any) -> Recogniser:
    site = parts.site()
    return Recogniser(
        site.sessions, model, "base", announcements_dir(parts.spool), clock=office_hours
    )


# --- end to end: SIPp carrier, dialer process, real faster-whisper ---------------------------


@pytest.mark.slow
@needs_sipp
def test_nonexistent_number_is_learned_from_the_announcement(
    parts: Parts, engine: Engine, model: Any, tmp_path: Path
) -> None:
    """A carrier that says "does not exist" and sends 480: the words, not the code, decide."""
    scenario, pause_ms = carrier_scenario(tmp_path, NOT_FOUND, "480 Temporarily Unavailable")
    key = number_key(load_or_create_secret(parts.data / "keys" / "number-key"), E164)
    with dialer(parts) as running:
        # An answered call's early media belongs to its recording: no announcement is kept.
        early = Carrier("b2b_carrier_early.xml", running.trunk_port, pause_ms=1500)
        talk = agent(running, "b2b_agent_talk.xml", number=OTHER, pause_ms=2000)  # type: ignore[arg-type]
        assert talk.returncode == 0, talk.stdout[-3000:]
        assert early.result()[0] == 0
        wait_for(lambda: attempts(engine))

        carrier = Carrier(scenario, running.trunk_port, pause_ms=pause_ms)
        status, _ = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 480, "the carrier's failure is relayed to the agent"
        assert carrier.result()[0] == 0
        [job] = wait_for(lambda: jobs(engine))
        assert (job.state, job.sip_status, job.caller_id) == ("pending", 480, CALLER_ID)
        assert (job.number_key, job.number_masked) == (key, "+86138****8000")
        audio = Path(job.audio_path)
        assert audio.parent == announcements_dir(parts.spool).resolve()
        with wave.open(str(audio)) as w:
            heard_s = w.getnframes() / w.getframerate()
        assert pause_ms / 1000 - 2.5 < heard_s <= MAX_EARLY_MEDIA_S
        # Before it is heard, the number only shows what 480 says: no answer, 2 hours.
        assert [e.status for e in events(engine, key)] == ["no_answer"]

        assert recogniser(parts, model).work_once() == "model base; idle"

        [done] = jobs(engine)
        assert (done.state, done.result, done.language) == ("done", "nonexistent", "en")
        assert "does not exist" in (done.transcript or "").lower()
        assert not audio.exists(), "the announcement's audio is deleted once heard"
        assert list(announcements_dir(parts.spool).iterdir()) == []
        learned = events(engine, key)[-1]
        assert (learned.status, learned.call_id) == ("nonexistent", done.call_id)
        assert "SIP 480" in learned.evidence and "does not exist" in learned.evidence.lower()

        with SilentTrunk(running.trunk_port):  # not dialed again: the status holds it back
            again, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert again == 403 and "number_status" in line and "nonexistent" in line
        wait_for(lambda: attempts(engine)[2:])
    assert [a.answered for a in attempts(engine)[:1]] == [True]
    assert len(jobs(engine)) == 1, "only the failed call's early media became a job"


@pytest.mark.slow
@needs_sipp
def test_blocked_announcements_retire_the_caller_id(
    parts: Parts, engine: Engine, model: Any, tmp_path: Path
) -> None:
    """Four earlier calls were announced as blocked; a fifth makes the run, with a generic 480."""
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        for i in range(4):
            call_id = f"earlier{i}"
            session.add(
                CallAttempt(
                    call_id=call_id,
                    sip_call_id=call_id,
                    agent="agent1",
                    number_key=f"other-number-{i}",
                    number_masked="+86139****0000",
                    started_at=now - timedelta(minutes=10 + i),
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    sip_status=480,
                    sip_reason="Temporarily Unavailable",
                    ended_by="carrier",
                    caller_id=CALLER_ID,
                )
            )
            session.add(
                Announcement(
                    call_id=call_id,
                    number_key=f"other-number-{i}",
                    number_masked="+86139****0000",
                    caller_id=CALLER_ID,
                    sip_status=480,
                    sip_reason="Temporarily Unavailable",
                    audio_path="",
                    created_at=now,
                    state="done",
                    result=CALLER_BLOCKED,
                    transcript="The call has been blocked.",
                )
            )
        session.commit()
    usable = caller_id_check(parts.site())
    scenario, pause_ms = carrier_scenario(tmp_path, BLOCKED, "480 Temporarily Unavailable")
    with dialer(parts) as running:
        carrier = Carrier(scenario, running.trunk_port, pause_ms=pause_ms)
        assert refused(running, tmp_path)[0] == 480  # type: ignore[arg-type]
        assert carrier.result()[0] == 0
        job = wait_for(lambda: [j for j in jobs(engine) if j.state == "pending"])[0]
        assert usable(CALLER_ID), "a 480 alone says nothing against our caller ID"

        recogniser(parts, model).work_once()

        heard = next(j for j in jobs(engine) if j.id == job.id)
        assert (heard.state, heard.result) == ("done", CALLER_BLOCKED), heard.transcript
        assert "blocked" in (heard.transcript or "").lower()
        key = number_key(load_or_create_secret(parts.data / "keys" / "number-key"), E164)
        # Our caller ID's trouble is not the number's: only the 480's own status is stored.
        assert [e.status for e in events(engine, key)] == ["no_answer"]
        assert not usable(CALLER_ID), "five blocked in a row: out of the rotation"

        with SilentTrunk(running.trunk_port):  # the only caller ID is retired: nothing dialed
            status, line = refused(running, tmp_path, number=OTHER)  # type: ignore[arg-type]
        assert status == 503, line
        [booked] = wait_for(lambda: attempts(engine)[5:])
    assert (booked.placed, booked.sip_reason) == (False, "No Caller ID Available")


# --- the recogniser against the database ------------------------------------------------------


def _job(parts: Parts, engine: Engine, call_id: str, audio: Path) -> int:
    record = _record(call_id, audio)
    with session_factory(engine)() as session:
        row = announcement_job(record, f"key-{call_id}", audio, office_hours())
        session.add(row)
        session.commit()
        return row.id


def test_a_broken_file_fails_its_job_and_the_next_one_is_heard(
    parts: Parts, engine: Engine, model: Any, tmp_path: Path
) -> None:
    folder = announcements_dir(parts.spool)
    folder.mkdir(parents=True)
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    garbage = folder / "garbage.wav"
    garbage.write_bytes(os.urandom(4000))
    good = speech(NOT_FOUND, folder / "good.wav")
    ids = [
        _job(parts, engine, name, path)
        for name, path in (("empty", empty), ("garbage", garbage), ("good", good))
    ]

    recogniser(parts, model).work_once()

    by_id = {j.id: j for j in jobs(engine)}
    first, second, third = (by_id[i] for i in ids)
    assert (first.state, second.state, third.state) == ("failed", "failed", "done")
    assert "empty" in (first.detail or "")
    assert "not readable audio" in (second.detail or "") or "decoded" in (second.detail or "")
    assert third.result == "nonexistent"
    assert list(folder.iterdir()) == [], "failed or done, no audio is kept"
    [event] = events(engine, "key-good")
    assert event.status == "nonexistent"
    assert as_utc(event.at) == office_hours(), "learned when the call ended, not when heard"


def test_abandoned_jobs_are_retried_once_then_given_up(parts: Parts, engine: Engine) -> None:
    folder = announcements_dir(parts.spool)
    folder.mkdir(parents=True)
    audio = write_wav(folder / "a.wav", [tone(1.0, 440)])
    job_id = _job(parts, engine, "a", audio)
    sessions = session_factory(engine)
    long_ago = office_hours() - timedelta(hours=1)
    for expected in ("pending", "failed"):
        with sessions() as session:
            job = session.get(Announcement, job_id)
            assert job is not None
            job.state, job.claimed_at = JobState.WORKING.value, long_ago  # a process died on it
            session.commit()
            _requeue_stale(session, office_hours())
        [row] = jobs(engine)
        assert row.state == expected
    assert "given up" in (row.detail or "")
    assert not audio.exists()


def test_orphaned_audio_is_swept(parts: Parts, engine: Engine) -> None:
    folder = announcements_dir(parts.spool)
    folder.mkdir(parents=True)
    waiting = write_wav(folder / "waiting.wav", [tone(1.0, 440)])
    _job(parts, engine, "waiting", waiting)
    orphan = write_wav(folder / "orphan.wav", [tone(1.0, 440)])
    fresh = write_wav(folder / "fresh.wav", [tone(1.0, 440)])
    old = time.time() - 2 * 3600
    for path in (waiting, orphan):
        os.utime(path, (old, old))
    assert recogniser(parts, model=None).sweep() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["fresh.wav", "waiting.wav"]
    assert fresh.exists()


# --- keeping the early media (the dialer's side) ----------------------------------------------


def _record(call_id: str, early: Path | None, *, answered: bool = False) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        sip_call_id="x",
        agent="agent1",
        number="+86138****8000",
        caller_id=CALLER_ID,
        started_at=0.0,
        answered=answered,
        duration_s=0.0,
        sip_status=200 if answered else 404,
        sip_reason="OK" if answered else "Not Found",
        ended_by=Ended.CARRIER,
        rule=None,
        recording=None,
        e164=E164,
        early_media=early,
    )


def test_early_media_is_cut_to_thirty_seconds(tmp_path: Path) -> None:
    early = write_wav(tmp_path / "c1-early.wav", [noise(45.0)])
    kept = keep_early_media(_record("c1", early), tmp_path / "announcements")
    assert kept is not None and kept.name == "c1.wav"
    with wave.open(str(kept)) as w:
        assert w.getnframes() == int(MAX_EARLY_MEDIA_S * RATE)
    assert not early.exists()


@pytest.mark.parametrize(
    ("audio", "answered"),
    [
        (np.zeros(5 * RATE, dtype=np.int16), False),  # 183 with SDP and no sound
        (noise(5.0), True),  # answered: the early media is in the call's recording
    ],
    ids=["silence", "answered"],
)
def test_nothing_is_kept_when_there_is_nothing_to_hear(
    tmp_path: Path, audio: Any, answered: bool
) -> None:
    early = write_wav(tmp_path / "c2-early.wav", [audio])
    folder = tmp_path / "announcements"
    assert keep_early_media(_record("c2", early, answered=answered), folder) is None
    assert not early.exists()
    assert not folder.exists() or list(folder.iterdir()) == []


def test_an_unreadable_file_is_kept_for_its_job_to_fail_visibly(tmp_path: Path) -> None:
    early = tmp_path / "c3-early.wav"
    early.write_bytes(b"RIFF....WAVEjunk")
    kept = keep_early_media(_record("c3", early), tmp_path / "announcements")
    assert kept is not None and kept.read_bytes() == b"RIFF....WAVEjunk"


# --- the phrase list file ---------------------------------------------------------------------


def test_a_phrase_file_adds_a_carriers_wording(tmp_path: Path) -> None:
    path = tmp_path / "phrases.yaml"
    path.write_text("suspended:\n  - 该号码已欠费\ncaller_blocked:\n  - 您的号码已被封停\n")
    book = load_phrase_book(path)
    assert book.verdict("对不起，该号码已欠费") == "suspended"
    assert book.verdict("您的号码已被封停") == CALLER_BLOCKED
    assert book.verdict("您拨打的号码是空号") == "nonexistent"  # other lists keep the defaults
    assert load_phrase_book(None) == PhraseBook()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("busy: [", "phrases.yaml"),
        ("gone:\n  - 空号\n", "unknown status 'gone'"),
    ],
)
def test_a_bad_phrase_file_is_named(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "phrases.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AnnouncementError, match=message) as caught:
        load_phrase_book(path)
    assert "phrases.yaml" in str(caught.value) and caught.value.hint

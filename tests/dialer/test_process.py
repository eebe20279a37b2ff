"""The dialer process as `dialguard up` runs it: credentials, policy and attempts in the
database, recordings into the encrypted spool, and what a killed dialer leaves salvaged.

SIPp plays the agent's softphone and the carrier; the dialer runs in its own
process against a real database of each backend (tests/dialer/running.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from faster_whisper import decode_audio
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry, verify
from api.audit.pauses import audit_pause_events
from api.settings import Settings
from api.web.auth import issue_token
from api.web.services import Services
from api.wiring import dialer_config
from dialer.dnc import add_entries, parse_csv
from dialer.models import CallAttempt, CallCommand, LiveCall, NumberStatusEvent, PauseEvent
from dialer.numbers import load_or_create_secret, number_key
from recording.db.engine import session_factory
from recording.models import RecordingStatus
from recording.store import fetch, spool_file
from tests.apps import make_app
from tests.dialer.running import Parts, attempts, dialer, office_hours, recordings, wait_for
from tests.dialer.sip.test_b2bua import E164, NUMBER, PCAP, Carrier, SilentTrunk, agent, refused
from tests.helpers import DATA

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")

T = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_answered_call_is_booked_and_its_recording_spooled_encrypted(
    parts: Parts, engine: Engine
) -> None:
    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_answer.xml", running.trunk_port)
        talk = agent(running, "b2b_agent_talk.xml", pause_ms=3000)  # type: ignore[arg-type]
        assert talk.returncode == 0, talk.stdout[-3000:]
        assert carrier.result()[0] == 0
        [attempt] = wait_for(lambda: attempts(engine))
    assert (attempt.agent, attempt.placed, attempt.answered, attempt.sip_status) == (
        "agent1",
        True,
        True,
        200,
    )
    assert attempt.number_masked == "+86138****8000"
    secret = (parts.data / "keys" / "number-key").read_bytes()
    assert attempt.number_key == number_key(secret, E164)
    assert E164.lstrip("+") not in repr(vars(attempt)), "the full number is never stored"
    [rec] = recordings(engine)
    assert (rec.id, rec.call_id, rec.agent, rec.channels) == (
        attempt.recording_id,
        attempt.call_id,
        "agent1",
        2,
    )
    assert rec.status is RecordingStatus.SPOOLED and 2.0 < rec.duration_s < 6.0
    stored = spool_file(parts.spool, rec.id).read_bytes()
    assert b"OggS" not in stored[:4096], "the spool holds ciphertext only"
    assert list(parts.calls.iterdir()) == [], "nothing is left in the calls folder"


def test_daily_cap_refuses_the_fourth_call_and_books_the_refusal(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    secret = load_or_create_secret(parts.data / "keys" / "number-key")
    with session_factory(engine)() as session:
        for i in range(3):  # three calls earlier this morning (cn-default: 3 a day)
            session.add(
                CallAttempt(
                    call_id=f"earlier{i}",
                    sip_call_id=f"x{i}",
                    agent="agent1",
                    number_key=number_key(secret, E164),
                    number_masked="+86138****8000",
                    started_at=office_hours() - timedelta(hours=1, minutes=i),
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    sip_status=486,
                    sip_reason="Busy Here",
                    ended_by="carrier",
                )
            )
        session.commit()
    with dialer(parts) as running:
        status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 403 and "daily_cap" in line
        wrong, _ = refused(running, tmp_path, password="wrong")  # type: ignore[arg-type]
        assert wrong == 403
        booked = wait_for(lambda: attempts(engine)[3:])
    assert [(a.rule, a.placed, a.sip_status) for a in booked] == [("daily_cap", False, 403)]
    time.sleep(0.5)
    assert len(attempts(engine)) == 4, "a failed login is not an agent's call"
    assert recordings(engine) == []


def test_killed_mid_call_the_recording_is_salvaged_at_restart(parts: Parts, engine: Engine) -> None:
    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_answer.xml", running.trunk_port, timeout=20)
        talking = threading.Thread(
            target=agent,
            args=(running, "b2b_agent_talk.xml"),
            kwargs={"pause_ms": 8000, "timeout": 15},
        )
        talking.start()
        party = parts.calls
        wait_for(lambda: [p for p in party.glob("*-debtor.wav") if p.stat().st_size > 40000])
        os.kill(running.process.pid, signal.SIGKILL)  # no BYE, no merge, no WAV header
        running.process.join()
        carrier.proc.kill()
        talking.join(30)
    assert recordings(engine) == []
    with dialer(parts):
        [rec] = wait_for(lambda: recordings(engine))
    assert (rec.agent, rec.channels) == ("agent1", 2)
    assert rec.duration_s >= 2.0, "the audio heard before the crash is kept"
    assert list(parts.calls.iterdir()) == []


def test_do_not_call_number_is_refused_before_the_policy(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    secret = load_or_create_secret(parts.data / "keys" / "number-key")
    rows, _ = parse_csv(f"{NUMBER},asked never to be called\n", "CN")
    with session_factory(engine)() as session:
        add_entries(session, rows, lambda e164: number_key(secret, e164), "t.csv", "sup", T)
        session.commit()
    with dialer(parts) as running, SilentTrunk(running.trunk_port):
        status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 403 and "do_not_call" in line
        [booked] = wait_for(lambda: attempts(engine))
    assert (booked.rule, booked.placed) == ("do_not_call", False)


def test_nonexistent_number_is_learned_and_not_dialed_again(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    scenario = tmp_path / "carrier.xml"
    template = (DATA / "sipp" / "b2b_carrier_reject.xml").read_text()
    scenario.write_text(template.replace("SIP/2.0 486 Busy Here", "SIP/2.0 404 Not Found"))
    with dialer(parts) as running:
        carrier = Carrier(scenario, running.trunk_port)
        assert refused(running, tmp_path)[0] == 404  # type: ignore[arg-type]
        assert carrier.result()[0] == 0
        wait_for(lambda: attempts(engine))
        with SilentTrunk(running.trunk_port):
            status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 403 and "number_status" in line
        wait_for(lambda: attempts(engine)[1:])
    with session_factory(engine)() as session:
        [event] = session.scalars(select(NumberStatusEvent))
    assert (event.status, event.evidence) == ("nonexistent", "SIP 404 Not Found")
    assert [(a.placed, a.rule) for a in attempts(engine)] == [
        (True, None),
        (False, "number_status"),
    ]


def test_caller_id_refused_five_times_leaves_the_rotation(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    with session_factory(engine)() as session:
        for i in range(5):  # five calls in a row that the carrier refused as blocked
            session.add(
                CallAttempt(
                    call_id=f"blocked{i}",
                    sip_call_id=f"b{i}",
                    agent="agent1",
                    number_key=f"other-number-{i}",
                    number_masked="+86139****0000",
                    started_at=office_hours() - timedelta(minutes=10 + i),
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    sip_status=403,
                    sip_reason="Forbidden",
                    ended_by="carrier",
                    caller_id="+861058000000",
                )
            )
        session.commit()
    with dialer(parts) as running, SilentTrunk(running.trunk_port):
        status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 503, line
        [booked] = wait_for(lambda: attempts(engine)[5:])
    assert (booked.placed, booked.sip_status) == (False, 503)
    assert booked.sip_reason == "No Caller ID Available"


def test_pause_for_card_data_is_kept_in_the_recording_metadata(
    parts: Parts, engine: Engine
) -> None:
    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_answer.xml", running.trunk_port)
        talk = agent(running, "b2b_agent_pause.xml")  # type: ignore[arg-type]
        assert talk.returncode == 0, talk.stdout[-3000:]
        assert carrier.result()[0] == 0
        [rec] = wait_for(lambda: recordings(engine))
    [(start, end)] = json.loads(rec.pauses_json)
    assert 0.5 < start < end and 2.0 < end - start < 4.0
    # The keypad's pause and resume reach the audit log through the follower, once each.
    sessions = session_factory(engine)
    assert audit_pause_events(sessions, lambda: datetime.now(UTC)) == 2
    assert audit_pause_events(sessions, lambda: datetime.now(UTC)) == 0
    entries = [(e.actor, e.action, e.target, json.loads(e.detail)) for e in _audit(engine)]
    assert [e[:3] for e in entries] == [
        ("agent1", "recording-pause", rec.call_id),
        ("agent1", "recording-resume", rec.call_id),
    ]
    assert [e[3]["source"] for e in entries] == ["keypad", "keypad"]
    assert abs(entries[0][3]["at_s"] - start) < 0.1 and abs(entries[1][3]["at_s"] - end) < 0.1
    with sessions() as session:
        assert verify(session) == []


# --- pausing the recording from the API ------------------------------------------------------


def _audit(engine: Engine) -> list[AuditEntry]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _decoded(parts: Parts, services: Services, recording_id: str, tmp: Path) -> tuple[Any, Any]:
    """Both channels of a spooled recording, decrypted and decoded (16 kHz float)."""
    site = parts.site()
    ogg = tmp / "call.ogg"
    with ogg.open("wb") as sink:
        fetch(site.sessions, parts.spool, services.copies, site.keys, recording_id, sink)
    left, right = decode_audio(str(ogg), 16000, split_stereo=True)
    return left, right


def _rms(samples: Any, start: float, end: float) -> float:
    part = samples[int(start * 16000) : int(end * 16000)]
    return float(np.sqrt(np.mean(part**2)))


def test_api_pause_mutes_the_recording_and_is_audited_once(
    parts: Parts, engine: Engine, services: Services, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        tokens = {}
        for name, role in (("sup.wang", "supervisor"), ("agent1", "agent"), ("agent2", "agent")):
            user = create_user(session, name, role, "a long passphrase", now)
            tokens[name] = {"Authorization": f"Bearer {issue_token(session, user, 't', now)}"}
    api = TestClient(make_app(dataclasses.replace(services, keys=parts.site().keys), engine))

    def command(call_id: str, action: str, who: str = "sup.wang") -> Any:
        return api.post(f"/api/v1/calls/{call_id}/{action}", headers=tokens[who])

    def applied(command_id: int) -> bool:
        with session_factory(engine)() as session:
            row = session.get(CallCommand, command_id)
            return row is not None and row.status == "done"

    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_answer.xml", running.trunk_port)
        with ThreadPoolExecutor(1) as pool:
            talk = pool.submit(
                agent,
                running,  # type: ignore[arg-type]
                "b2b_agent_talk.xml",
                pause_ms=7000,
            )
            [live] = wait_for(lambda: _live_calls(engine))
            assert command("0" * 16, "pause").status_code == 404  # no such call
            assert command(live.call_id, "resume").status_code == 409  # not paused
            assert command(live.call_id, "pause", "agent2").status_code == 404  # not theirs
            time.sleep(2.0)  # answered, both parties talking
            paused = command(live.call_id, "pause", "agent1")  # the agent on the call may
            assert paused.status_code == 202, paused.text
            assert command(live.call_id, "pause").status_code == 409  # already (being) paused
            wait_for(lambda: applied(paused.json()["id"]), timeout=5)
            time.sleep(2.0)  # the card number is read out
            resumed = command(live.call_id, "resume")
            assert resumed.status_code == 202, resumed.text
            wait_for(lambda: applied(resumed.json()["id"]), timeout=5)
            assert talk.result().returncode == 0
        assert carrier.result()[0] == 0
        [rec] = wait_for(lambda: recordings(engine))
        wait_for(lambda: attempts(engine))  # booked: the recording is spooled just before
        assert command(live.call_id, "pause").status_code == 404  # the call has ended
    assert _live_calls(engine) == []
    [(start, end)] = json.loads(rec.pauses_json)
    assert 1.0 < start < end and 1.5 < end - start < 3.5, (start, end)
    left, right = _decoded(parts, services, rec.id, tmp_path)
    before = _rms(left, 0.2, start - 0.2), _rms(right, 0.2, start - 0.2)
    during = _rms(left, start + 0.2, end - 0.2), _rms(right, start + 0.2, end - 0.2)
    assert min(before) > 0.01, before  # both parties are heard before the pause
    assert max(during) < 0.002, during  # and nothing of either while paused

    entries = [(e.actor, e.action, e.target) for e in _audit(engine)]
    assert [e for e in entries if e[1].startswith("recording-")] == [
        ("agent1", "recording-pause", live.call_id),
        ("sup.wang", "recording-resume", live.call_id),
    ]
    with session_factory(engine)() as session:
        events = list(session.scalars(select(PauseEvent).order_by(PauseEvent.id)))
    assert [(e.action, e.actor, e.source) for e in events] == [
        ("pause", "agent1", "api"),
        ("resume", "sup.wang", "api"),
    ]
    # The follower stamps them without a second entry: the route audited them already.
    assert audit_pause_events(session_factory(engine), lambda: datetime.now(UTC)) == 2
    assert len(_audit(engine)) == len(entries)
    with session_factory(engine)() as session:
        assert verify(session) == []


def _live_calls(engine: Engine) -> list[LiveCall]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(LiveCall)))


def test_hold_is_booked_with_the_call_and_the_recording_covers_it(
    parts: Parts, engine: Engine
) -> None:
    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_hold.xml", running.trunk_port)
        talk = agent(running, "b2b_agent_hold.xml")  # type: ignore[arg-type]
        assert talk.returncode == 0, talk.stdout[-3000:]
        assert carrier.result()[0] == 0  # the relayed hold and resume, then the BYE
        [attempt] = wait_for(lambda: attempts(engine))
        [rec] = wait_for(lambda: recordings(engine))
    [(start, end)] = json.loads(attempt.holds_json)
    assert 2.5 < end - start < 4.5, (start, end)
    assert attempt.answered and attempt.ended_by == "agent"
    assert rec.duration_s is not None and abs(rec.duration_s - attempt.duration_s) < 1.0
    assert json.loads(rec.pauses_json) == []  # a hold is not a pause: the audio runs on


def test_trunk_login_reaches_the_dialer_and_is_all_or_nothing() -> None:
    settings = Settings(
        trunk_uri="sip:carrier.example:5060",
        caller_ids="+861058000000",
        trunk_username="dialguard-trunk",
        trunk_password="trunk-secret",
    )
    config = dialer_config(settings, "1")
    assert (config.trunk_username, config.trunk_password) == ("dialguard-trunk", "trunk-secret")
    assert "trunk-secret" not in repr(settings) + repr(config)
    with pytest.raises(ValidationError, match="give its password too"):
        Settings(trunk_username="dialguard-trunk")
    with pytest.raises(ValidationError, match="needs DIALGUARD_TRUNK_USERNAME"):
        Settings(trunk_password="trunk-secret")

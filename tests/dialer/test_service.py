"""The dialer process as `dialguard up` runs it: credentials, policy and attempts in the
database, recordings into the encrypted spool, and what a killed dialer leaves salvaged.

SIPp plays the agent's softphone and the carrier; the dialer runs in its own
process against a real database of each backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import socket
import struct
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY
from zoneinfo import ZoneInfo

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
from dialer.debtors.records import DebtorIn, Sealer, upsert, validate_row
from dialer.dnc import Scope, add_entries, parse_csv
from dialer.models import (
    CallAttempt,
    CallCommand,
    CallRequest,
    LiveCall,
    NumberStatusEvent,
    PauseEvent,
    SipRegistration,
)
from dialer.policy import preset
from dialer.service import (
    CallSite,
    DebtorFacts,
    load_or_create_secret,
    number_key,
    policy_decider,
    run,
    set_sip_password,
    store_recording,
)
from dialer.sip.b2bua import B2buaConfig
from dialer.sip.digest import Algorithm
from dialer.sip.probe import wait_answering
from dialer.sip.salvage import repair_wav, salvage
from recording.db.engine import as_utc, make_engine, session_factory
from recording.keys import FileKeyRing
from recording.models import Recording, RecordingStatus
from recording.store import fetch, spool_file
from tests.apps import make_app
from tests.audio import RATE, tone, write_wav
from tests.dialer.sip.test_b2bua import E164, NUMBER, PCAP, Carrier, SilentTrunk, agent, refused
from tests.helpers import DATA, free_port

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")

SH = ZoneInfo("Asia/Shanghai")
T = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def office_hours() -> datetime:
    """A Tuesday morning in Shanghai: inside every preset's calling window."""
    return datetime(2026, 11, 24, 10, 0, tzinfo=SH).astimezone(UTC)


@dataclass
class Parts:
    database_url: str
    data: Path

    @property
    def calls(self) -> Path:
        return self.data / "calls"

    @property
    def spool(self) -> Path:
        return self.data / "spool"

    def site(self) -> CallSite:
        return CallSite(
            sessions=session_factory(make_engine(self.database_url)),
            policy=preset("cn-default"),
            site_tz=SH,
            calendar=None,
            number_secret=load_or_create_secret(self.data / "keys" / "number-key"),
            spool=self.spool,
            keys=FileKeyRing(self.data / "keys" / "kek.json"),
            retention_days=730,
            clock=office_hours,
        )


def _serve(parts: Parts, config: B2buaConfig) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as `dialguard up` stops a child
    run(config, parts.site(), stop)


@dataclass
class Dialer:
    port: int
    trunk_port: int
    process: Any


@contextlib.contextmanager
def dialer(parts: Parts) -> Iterator[Dialer]:
    ctx = multiprocessing.get_context("spawn")
    port, trunk_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=parts.calls,
        secret=os.urandom(32),
        algorithms=(Algorithm.MD5, Algorithm.SHA256),  # as `dialguard up` offers them
    )
    process = ctx.Process(target=_serve, args=(parts, config))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield Dialer(port, trunk_port, process)
    finally:
        process.terminate()
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join()


@pytest.fixture
def parts(engine: Engine, database_url: str, tmp_path: Path) -> Parts:
    made = Parts(database_url, tmp_path / "data")
    with session_factory(engine)() as session:
        set_sip_password(session, "agent1", "dialguard", "secret", office_hours())
    return made


def _wait_for(what: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def attempts(engine: Engine) -> list[CallAttempt]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(CallAttempt).order_by(CallAttempt.id)))


def recordings(engine: Engine) -> list[Recording]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Recording)))


def test_answered_call_is_booked_and_its_recording_spooled_encrypted(
    parts: Parts, engine: Engine
) -> None:
    with dialer(parts) as running:
        carrier = Carrier("b2b_carrier_answer.xml", running.trunk_port)
        talk = agent(running, "b2b_agent_talk.xml", pause_ms=3000)  # type: ignore[arg-type]
        assert talk.returncode == 0, talk.stdout[-3000:]
        assert carrier.result()[0] == 0
        [attempt] = _wait_for(lambda: attempts(engine))
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
        booked = _wait_for(lambda: attempts(engine)[3:])
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
        _wait_for(lambda: [p for p in party.glob("*-debtor.wav") if p.stat().st_size > 40000])
        os.kill(running.process.pid, signal.SIGKILL)  # no BYE, no merge, no WAV header
        running.process.join()
        carrier.proc.kill()
        talking.join(30)
    assert recordings(engine) == []
    with dialer(parts):
        [rec] = _wait_for(lambda: recordings(engine))
    assert (rec.agent, rec.channels) == ("agent1", 2)
    assert rec.duration_s >= 2.0, "the audio heard before the crash is kept"
    assert list(parts.calls.iterdir()) == []


def test_repair_rewrites_the_sizes_of_a_truncated_wav(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "p.wav", [tone(2.0, 440)])
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 36)  # as pjmedia leaves it before closing
    raw[40:44] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw) + b"\x01")  # and half a sample
    assert repair_wav(path)
    with wave.open(str(path)) as w:
        assert w.getnframes() == 2 * RATE
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(b"not a wav at all")
    assert not repair_wav(garbage)


def test_salvage_keeps_what_it_cannot_store(parts: Parts, engine: Engine) -> None:
    parts.calls.mkdir(parents=True)
    write_wav(parts.calls / "c1-agent.wav", [tone(1.0, 440)])
    (parts.calls / "c1.json").write_text('{"call_id": "c1", "agent": "a7", "started_at": 1.0}')

    def broken(_: Any) -> None:
        raise OSError("disk full")

    assert salvage(parts.calls, broken) == 0
    assert sorted(p.name for p in parts.calls.iterdir()) == ["c1.json", "c1.wav"]
    site = parts.site()
    from dialer.service import _store_leftover

    assert salvage(parts.calls, _store_leftover(site)) == 1
    [rec] = recordings(engine)
    assert (rec.call_id, rec.agent, rec.recorded_at.year) == ("c1", "a7", 1970)
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
        [booked] = _wait_for(lambda: attempts(engine))
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
        _wait_for(lambda: attempts(engine))
        with SilentTrunk(running.trunk_port):
            status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 403 and "number_status" in line
        _wait_for(lambda: attempts(engine)[1:])
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
                    call_id=f"blocked{i}", sip_call_id=f"b{i}", agent="agent1",
                    number_key=f"other-number-{i}", number_masked="+86139****0000",
                    started_at=office_hours() - timedelta(minutes=10 + i), placed=True,
                    answered=False, duration_s=0.0, sip_status=403, sip_reason="Forbidden",
                    ended_by="carrier", caller_id="+861058000000",
                )
            )  # fmt: skip
        session.commit()
    with dialer(parts) as running, SilentTrunk(running.trunk_port):
        status, line = refused(running, tmp_path)  # type: ignore[arg-type]
        assert status == 503, line
        [booked] = _wait_for(lambda: attempts(engine)[5:])
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
        [rec] = _wait_for(lambda: recordings(engine))
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


# --- click-to-call for a debtor: its do-not-call lists, zone, call-back windows, caps ----------


def _debtor_row(
    client: str, external_id: str, timezone: str, windows: str = "", number: str = NUMBER
) -> DebtorIn:
    checked = validate_row(
        {"client": client, "external_id": external_id, "name": "王小明", "stage": "early",
         "timezone": timezone, "numbers": f"debtor:{number}", "callback_windows": windows},
        "CN",
    )  # fmt: skip
    assert isinstance(checked, DebtorIn), checked
    return checked


def test_click_to_call_decides_with_the_debtor(
    parts: Parts, engine: Engine, services: Services
) -> None:
    """A debtor's own do-not-call list, zone and call-back windows reach the worker's
    decision through the request the API queued; the sealed debtor row is never read."""
    site = parts.site()
    secret = site.number_secret
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        upsert(
            session,
            [
                _debtor_row("bank-a", "D-1", "Asia/Shanghai"),
                _debtor_row("bank-a", "D-2", "Asia/Shanghai"),
                _debtor_row("bank-b", "NY-1", "America/New_York"),
                _debtor_row("bank-b", "NY-2", "America/New_York", "daily 20:00-22:00"),
                _debtor_row("bank-c", "D-1", "Asia/Shanghai"),  # the same id at another client
            ],
            Sealer(site.keys, secret),
            now,
        )
        rows, _ = parse_csv(f"{NUMBER},wants letters only\n", "CN", Scope.DEBTOR, "bank-a/D-1")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "d.csv", "sup", now)
        rows, _ = parse_csv("13900139000,asked by phone\n", "CN", Scope.DEBTOR, "D-2")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "e.csv", "sup", now)
        rows, _ = parse_csv("13700137000,client objects\n", "CN", Scope.CLIENT, "bank-b")
        add_entries(session, rows, lambda e164: number_key(secret, e164), "c.csv", "sup", now)
        session.add(
            SipRegistration(username="agent1", contact="sip:agent1@127.0.0.1:5999",
                            expires_at=now + timedelta(hours=1), updated_at=now)
        )  # fmt: skip
        user = create_user(session, "sup.wang", "supervisor", "a long passphrase", now)
        headers = {"Authorization": f"Bearer {issue_token(session, user, 't', now)}"}
        session.commit()
    api = TestClient(make_app(dataclasses.replace(services, keys=site.keys), engine))

    def request(debtor: str | None, client: str | None = None, number: str = NUMBER) -> int:
        body = {"agent": "agent1", "number": number, "debtor_id": debtor, "client": client}
        answer = api.post("/api/v1/calls", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])

    decide_call = policy_decider(site)  # 10:00 on a Tuesday in Shanghai = 21:00 in New York
    allowed, rule, reason = decide_call(E164, request("D-1", "bank-a"))
    assert (allowed, rule) == (False, "do_not_call") and "do-not-call list of this debtor" in reason
    assert decide_call(E164, request("D-2")) == (True, "allowed", ANY)  # another debtor
    # A keypad call knows only the number: every debtor holding it has its lists applied.
    allowed, rule, reason = decide_call(E164, None)
    assert (allowed, rule) == (False, "do_not_call") and "of debtor D-1" in reason
    assert decide_call(E164, request("D-1", "bank-c"))[0], "another client's D-1"
    # A list named by the account id alone: that id at any client.
    assert decide_call("+8613900139000", request("D-2", number="13900139000"))[1] == "do_not_call"
    assert decide_call("+8613900139000", request("D-1", "bank-a", number="13900139000"))[0]
    # The client's list: bank-b's debtors only.
    assert decide_call("+8613700137000", request("NY-1", number="13700137000"))[1] == "do_not_call"
    assert decide_call("+8613700137000", request("D-2", number="13700137000"))[0]
    # The debtor's zone moves the window: 21:00 in New York is after calling hours ...
    allowed, rule, reason = decide_call(E164, request("NY-1"))
    assert (allowed, rule) == (False, "window") and "America/New_York" in reason
    # ... unless the debtor agreed to be called back then.
    assert decide_call(E164, request("NY-2"))[:2] == (True, "callback")
    # An ambiguous or unknown debtor is refused at the API, before anything is queued.
    no_client = {"agent": "agent1", "number": NUMBER, "debtor_id": "D-1"}
    ambiguous = api.post("/api/v1/calls", headers=headers, json=no_client)
    assert ambiguous.status_code == 422 and "several clients" in ambiguous.json()["detail"]
    unknown = api.post("/api/v1/calls", headers=headers, json={**no_client, "debtor_id": "D-9"})
    assert unknown.status_code == 422 and "no debtor" in unknown.json()["detail"]


def test_per_debtor_caps_count_the_debtors_calls_on_any_number(
    parts: Parts, engine: Engine
) -> None:
    site = parts.site()
    secret = site.number_secret
    with session_factory(engine)() as session:
        for i in range(3):  # three calls to D-1 this morning, on its other number
            session.add(
                CallAttempt(
                    call_id=f"d1-{i}", sip_call_id=f"x{i}", agent="agent1",
                    number_key=number_key(secret, "+8613900139000"), number_masked="+86139****9000",
                    debtor_id="D-1", started_at=office_hours() - timedelta(hours=1, minutes=i),
                    placed=True, answered=False, duration_s=0.0, sip_status=486,
                    sip_reason="Busy Here", ended_by="carrier",
                )
            )  # fmt: skip
        for debtor in ("D-1", "D-2"):
            session.add(
                CallRequest(agent="agent1", number_sealed=b"", number_masked="+86138****8000",
                            debtor_id=debtor, client_id="bank-a", debtor_tz="Asia/Shanghai",
                            requested_by="sup", status="claimed", created_at=office_hours())
            )  # fmt: skip
        session.commit()
        first, second = session.scalars(select(CallRequest.id).order_by(CallRequest.id)).all()
    decide_call = policy_decider(site)
    assert decide_call(E164, first)[:2] == (False, "daily_cap")  # D-1, whatever the number
    assert decide_call(E164, second)[0]  # D-2 on the same number: its own count
    assert decide_call(E164, None)[0]  # the number itself was not called today


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
            [live] = _wait_for(lambda: _live_calls(engine))
            assert command("0" * 16, "pause").status_code == 404  # no such call
            assert command(live.call_id, "resume").status_code == 409  # not paused
            assert command(live.call_id, "pause", "agent2").status_code == 404  # not theirs
            time.sleep(2.0)  # answered, both parties talking
            paused = command(live.call_id, "pause", "agent1")  # the agent on the call may
            assert paused.status_code == 202, paused.text
            assert command(live.call_id, "pause").status_code == 409  # already (being) paused
            _wait_for(lambda: applied(paused.json()["id"]), timeout=5)
            time.sleep(2.0)  # the card number is read out
            resumed = command(live.call_id, "resume")
            assert resumed.status_code == 202, resumed.text
            _wait_for(lambda: applied(resumed.json()["id"]), timeout=5)
            assert talk.result().returncode == 0
        assert carrier.result()[0] == 0
        [rec] = _wait_for(lambda: recordings(engine))
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
        [attempt] = _wait_for(lambda: attempts(engine))
        [rec] = _wait_for(lambda: recordings(engine))
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


def test_a_clients_call_is_kept_as_long_as_that_client_requires(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    """DIALGUARD_CLIENT_RETENTION: bank-b's calls are locked for three years, others for two."""
    site = dataclasses.replace(parts.site(), client_retention={"bank-b": 1095})
    started = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    for call_id, client in (("c-b", "bank-b"), ("c-a", "bank-a"), ("c-none", None)):
        wav = write_wav(tmp_path / f"{call_id}.wav", [tone(2, 440), tone(2, 660)])
        debtor = DebtorFacts("D-1", client) if client else None
        store_recording(site, wav, call_id, "agent1", started, debtor=debtor)
    kept = {r.call_id: (as_utc(r.retain_until) - started).days for r in recordings(engine)}
    assert kept == {"c-b": 1095, "c-a": 730, "c-none": 730}


def test_a_keypad_call_is_decided_for_the_debtor_holding_the_number(
    parts: Parts, engine: Engine
) -> None:
    """A softphone dials a number, not a debtor: the debtor records say whose it is."""
    site = parts.site()
    secret = site.number_secret
    now = datetime.now(UTC)
    rows = [
        _debtor_row("bank-b", "NY-1", "America/New_York", number="13700137000"),
        _debtor_row("bank-a", "D-1", "Asia/Shanghai"),  # these two share NUMBER
        _debtor_row("bank-c", "D-7", "Asia/Shanghai"),
    ]
    with session_factory(engine)() as session:
        upsert(session, rows, Sealer(site.keys, secret), now)
        listed, _ = parse_csv(f"{NUMBER},wrong person\n", "CN", Scope.CLIENT, "bank-c")
        add_entries(session, listed, lambda e164: number_key(secret, e164), "c.csv", "sup", now)
        session.commit()
    decide_call = policy_decider(site)  # 10:00 on a Tuesday in Shanghai = 21:00 in New York
    # One holder: the call is that debtor's, in the debtor's zone.
    allowed, rule, reason = decide_call("+8613700137000", None)
    assert (allowed, rule) == (False, "window") and "America/New_York" in reason
    # Two holders (a shared phone): one client's list is enough to refuse it.
    allowed, rule, reason = decide_call(E164, None)
    assert (allowed, rule) == (False, "do_not_call") and "of client bank-c" in reason
    # Nobody's number: only the global list and the number's own history count.
    assert decide_call("+8613900139000", None)[:2] == (True, "allowed")

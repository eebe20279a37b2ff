"""The dialer process as `dialguard up` runs it: credentials, policy and attempts in the
database, recordings into the encrypted spool, and what a killed dialer leaves salvaged.

SIPp plays the agent's softphone and the carrier; the dialer runs in its own
process against a real database of each backend.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dialer.b2bua import B2buaConfig
from dialer.digest import Algorithm
from dialer.dnc import add_entries, parse_csv
from dialer.models import CallAttempt, NumberStatusEvent
from dialer.policy import preset
from dialer.salvage import repair_wav, salvage
from dialer.service import CallSite, load_or_create_secret, number_key, run, set_sip_password
from recording.db import make_engine, session_factory
from recording.keys import FileKeyRing
from recording.models import Recording, RecordingStatus
from recording.store import spool_file
from tests.audio import RATE, tone, write_wav
from tests.helpers import DATA, free_port
from tests.test_b2bua import E164, NUMBER, PCAP, Carrier, SilentTrunk, _wait_up, agent, refused

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
        _wait_up(port, process)
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

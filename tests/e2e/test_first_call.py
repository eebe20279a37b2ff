"""A newcomer's first call: `dialguard up` with no carrier, a softphone, the test carrier.

What README.md's "First call in five minutes" promises, end to end: with no
trunk configured, `dialguard up` starts its built-in test carrier; an agent's
softphone (SIPp) calls any number through the Kamailio edge; the carrier answers,
says its line and hangs up; the call is recorded, stored twice, transcribed
and QA-checked like any call, marked as a test call everywhere, and every
file it left is its user's alone. Where baresip is installed (the README's
softphone; not in the Makefile's packages), it places a second call the way
the README says.
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dialer.models import CallAttempt
from qa_scoring.models import QaResult
from recording.db.engine import as_utc, make_engine, session_factory
from recording.models import Recording, RecordingStatus
from tests.api.test_private_files import open_to_others
from tests.dialer.sip.test_b2bua import channel_rms
from tests.e2e.test_up import GREEN_WITHIN, Running, _number_in_daytime
from tests.helpers import DATA, dialguard, espeak_wav, free_port, run_sipp
from transcribe.models import JobStatus, SegmentRow, TranscriptionJob

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/usr/share/sip-tester/g711a.pcap").exists(), reason="no SIPp sample pcap"
    ),
]

PASSWORD = "softphone-secret-77"
SAMPLE_PCAP = 'play_pcap_audio="/usr/share/sip-tester/g711a.pcap"'
TEST_WORDS = ("test line", "letter", "friday", "five hundred", "500", "dollars", "goodbye")


def _speaking_agent(work: Path) -> Path:
    """The agent's scenario, saying an English line as G.711a RTP.

    A call's language is detected on the agent's side and used for both
    (transcribe/transcriber.py); SIPp's sample pcap is in Slovenian, which
    would have the carrier's English line read as Slovenian.
    """
    said = espeak_wav(
        "Hello, this is the collections department calling about your loan payment.",
        work / "agent.wav",
    )
    alaw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(said), "-f", "alaw", "-"],
        check=True,
        capture_output=True,
    ).stdout
    pcap = work / "agent.pcap"
    with pcap.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(len(alaw) // 160):
            rtp = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, i * 160, 0x1111)
            body = rtp + alaw[i * 160 : (i + 1) * 160]
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(body), 0) + body
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0x4000,
                64,
                17,
                0,
                bytes([10, 0, 0, 1]),
                bytes([10, 0, 0, 2]),
            )
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            usec = i * 20_000
            out.write(struct.pack("<IIII", usec // 10**6, usec % 10**6, len(frame), len(frame)))
            out.write(frame)
    scenario = (DATA / "sipp" / "edge_agent_hears_bye.xml").read_text()
    assert SAMPLE_PCAP in scenario
    mine = work / "agent.xml"
    mine.write_text(scenario.replace(SAMPLE_PCAP, f'play_pcap_audio="{pcap}"'))
    return mine


def _baresip_call(work: Path, sip_port: int, number: str) -> str:
    """The README's softphone: baresip as agent1 dials `number` and talks until hung up.

    Its audio source is an English line padded with silence (it hangs up when
    its file ends); its console output is returned.
    """
    said = espeak_wav("Hello, this is agent one about your loan.", work / "bs-agent.wav")
    padded = work / "bs-agent-padded.wav"
    subprocess.run(
        [
            *("ffmpeg", "-loglevel", "error", "-y", "-i", str(said)),
            *("-af", "apad=pad_dur=20", str(padded)),
        ],
        check=True,
    )
    home = work / "baresip"
    home.mkdir()
    (home / "config").write_text(
        "sip_listen 127.0.0.1:0\n"
        "audio_player aubridge,none\n"
        f"audio_source aufile,{padded}\n"
        "audio_alert aubridge,none\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\n"
        "module_app account.so\nmodule_app menu.so\n"
    )
    (home / "accounts").write_text(
        f"<sip:agent1@127.0.0.1:{sip_port};transport=udp>;auth_pass={PASSWORD};regint=0\n"
    )
    done = subprocess.run(
        ["baresip", "-f", str(home), "-e", f"d {number}", "-t", "25"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def _wait_for_the_call(database_url: str, limit_s: float = 240) -> tuple[object, ...]:
    """The call's attempt, recording, transcription job and QA result, once all are done."""
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    deadline = time.monotonic() + limit_s
    found: tuple[object, ...] = ()
    try:
        while time.monotonic() < deadline:
            with sessions() as session:
                attempt = session.scalar(select(CallAttempt))
                rec = session.scalar(select(Recording))
                job = qa = None
                said: list[str] = []
                if rec is not None:
                    job = session.scalar(
                        select(TranscriptionJob).where(TranscriptionJob.recording_id == rec.id)
                    )
                    qa = session.scalar(select(QaResult).where(QaResult.recording_id == rec.id))
                    said = list(
                        session.scalars(
                            select(SegmentRow.text).where(
                                SegmentRow.recording_id == rec.id, SegmentRow.speaker == "debtor"
                            )
                        )
                    )
            found = (attempt, rec, job, qa, said)
            if (
                rec is not None
                and rec.status is RecordingStatus.STORED
                and job is not None
                and job.status in (JobStatus.DONE, JobStatus.DEAD)
                and qa is not None
            ):
                return found
            time.sleep(1)
    finally:
        engine.dispose()
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_first_call_with_the_test_carrier(
    dialguard_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    env = dialguard_env | {
        "DIALGUARD_DATABASE_URL": database_url,
        "DIALGUARD_DIALER_WORKERS": "2",  # auto would start 12 a core: heavy for a test box
        "DIALGUARD_REQUIRE_TOTP": "false",  # the status page below, without an authenticator
        "DIALGUARD_LOG_LEVEL": "INFO",
    }
    assert "DIALGUARD_TRUNK_URI" not in env and "DIALGUARD_TEST_CARRIER" not in env
    product = Running(env, tmp_path / "up.log")
    try:
        product.wait_green(GREEN_WITHIN)
        console = f"http://127.0.0.1:{env['DIALGUARD_API_PORT']}"
        assert "No admin account yet" in httpx.get(f"{console}/login").text
        for args in (
            ["admin", "create-user", "agent1", "--role", "agent", "--password-stdin"],
            ["admin", "set-sip-password", "agent1", "--password-stdin"],
            ["admin", "create-user", "boss", "--role", "admin", "--password-stdin"],
        ):
            made = dialguard(args, env, stdin=PASSWORD + "\n")
            assert made.returncode == 0, made.stderr
        assert "No admin account yet" not in httpx.get(f"{console}/login").text

        number = _number_in_daytime(datetime.now(UTC))  # outside the hours it is refused
        sip = int(env["DIALGUARD_SIP_PORT"])
        call = run_sipp(
            str(_speaking_agent(tmp_path)),
            f"127.0.0.1:{sip}",
            "-s",
            number,
            "-au",
            "agent1",
            "-ap",
            PASSWORD,
            "-auth_uri",
            f"{number}@127.0.0.1:{sip}",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            timeout=60,
        )
        assert call.returncode == 0, call.stdout[-3000:] + product.log.read_text()[-3000:]

        attempt, rec, job, qa, said = _wait_for_the_call(database_url)
        log = product.log.read_text()
        assert isinstance(attempt, CallAttempt), log[-3000:]
        assert isinstance(rec, Recording) and rec.status is RecordingStatus.STORED, log[-3000:]
        assert isinstance(job, TranscriptionJob) and job.status is JobStatus.DONE, job
        assert isinstance(qa, QaResult) and qa.error is None, qa
        # marked as a test call wherever calls are listed
        assert (attempt.caller_id, attempt.answered, attempt.recording_id) == (
            "test-carrier",
            True,
            rec.id,
        )
        # the carrier's line is on the debtor's channel, and Whisper heard it
        assert isinstance(said, list)
        heard = " ".join(str(s) for s in said).lower()
        assert any(word in heard for word in TEST_WORDS), heard
        # recorded_at is the answer, not the INVITE; the recording is as long as the talk
        assert (
            abs(
                (as_utc(rec.recorded_at) - as_utc(attempt.started_at)).total_seconds()
                - attempt.ring_s
            )
            < 1.0
        ), (rec.recorded_at, attempt.started_at, attempt.ring_s)
        assert attempt.ring_s > 0.8  # the carrier rings for a second first
        assert abs(rec.duration_s - attempt.duration_s) < 1.0, (rec.duration_s, attempt.duration_s)
        fetched = tmp_path / "fetched.wav"
        got = dialguard(["recording", "fetch", rec.id, "-o", str(fetched)], env)
        assert got.returncode == 0, got.stderr
        duration, agent_rms, debtor_rms = channel_rms(fetched)
        assert abs(duration - attempt.duration_s) < 1.0
        assert agent_rms > 100 and debtor_rms > 100, "both parties are heard"

        if shutil.which("baresip"):  # the README's softphone, as a newcomer runs it
            other = number[:-1] + str((int(number[-1]) + 1) % 10)  # same zone: daytime too
            heard = _baresip_call(tmp_path, sip, other)
            assert "Call established" in heard and "terminated" in heard, heard[-3000:]
            engine = make_engine(database_url)
            with session_factory(engine)() as session:
                calls = session.scalars(select(CallAttempt).order_by(CallAttempt.id)).all()
            engine.dispose()
            assert [(c.answered, c.caller_id) for c in calls] == [(True, "test-carrier")] * 2

        # the test carrier is named in the log and on the status page
        assert "TEST CARRIER" in log and "No trunk set: calls go to the built-in TEST" in log
        browser = httpx.Client(base_url=console)
        login = browser.post("/login", data={"username": "boss", "password": PASSWORD})
        assert login.status_code == 303, login.text
        status = browser.get("/status").text
        assert "TEST CARRIER on 127.0.0.1:" in status
        assert "2 workers = 4 calls: set by DIALGUARD_DIALER_WORKERS" in status

        product.process.send_signal(signal.SIGINT)
        assert product.process.wait(30) == 0
        data = Path(env["DIALGUARD_DATA_DIR"])
        lines = sorted(p.name[:8] for p in (data / "test-carrier").glob("line-*.wav"))
        assert lines == ["line-en-", "line-zh-"]  # both made at the first start
        assert open_to_others(data) == []
    finally:
        product.close()

"""The B2BUA in its own process, between SIPp playing the agent's softphone and the carrier.

Every call is checked from three sides: what the agent's SIPp saw, what the
carrier's SIPp saw (or that nothing reached the trunk at all), and the
CallRecord the B2BUA handed to `on_finished` once both legs were gone.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import re
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialer.calls import CallRecord, Ended
from dialer.reservations import DecisionUnavailable
from dialer.sip.b2bua import B2bua
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import (
    Algorithm,
    Credential,
    FailureThrottle,
    expected_response,
    parse_authorization,
)
from dialer.sip.messages import host_of, parse_request, uri_user
from dialer.sip.probe import wait_answering
from tests.helpers import DATA, free_port, run_sipp, sip_message, sipp_server

REALM = "dialguard"
NUMBER = "13800138000"  # dialed as an agent would, no country code
E164 = "+8613800138000"
REFUSED = "13900139000"  # the test policy refuses this one
UNDECIDED = "8613700137000"  # the test policy cannot decide this one (its database is down)
COOLOFF_S = 4.0
PCAP = Path("/usr/share/sip-tester/g711a.pcap")

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


def _credentials(username: str) -> Credential | None:
    if username == "agent1":
        return Credential.from_password("agent1", REALM, "secret", (Algorithm.MD5,))
    return None


def _decide(
    e164: str, request_id: int | None = None, call_id: str | None = None, agent: str = ""
) -> tuple[bool, str, str]:
    if e164 == "+8613900139000":
        return False, "quiet_hours", "22:30 falls in 22:00-08:00, when no call is placed."
    if e164 == "+" + UNDECIDED:
        raise DecisionUnavailable("the database did not answer; the call is not placed")
    return True, "allowed", "Allowed"


def _serve(config: B2buaConfig, records: Any, stop: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    box: list[B2bua] = []

    def finished(record: CallRecord) -> None:
        records.put((record, box[0].live_legs))

    throttle = FailureThrottle(time.monotonic, max_failures=3, window_s=60, cooloff_s=COOLOFF_S)
    b2b = B2bua(config, _credentials, _decide, finished, throttle=throttle)
    box.append(b2b)
    b2b.run(stop)


@dataclass
class Server:
    port: int
    trunk_port: int
    recordings: Path
    records: Any
    stop: Any

    def record(self, timeout: float = 20) -> tuple[CallRecord, int]:
        got: tuple[CallRecord, int] = self.records.get(timeout=timeout)
        return got

    def no_record(self, wait: float = 1.0) -> None:
        with pytest.raises(queue.Empty):
            self.records.get(timeout=wait)


@contextlib.contextmanager
def running_b2bua(
    recordings: Path,
    ring_timeout_s: float = 20,
    trunk_username: str | None = None,
    trunk_password: str | None = None,
) -> Iterator[Server]:
    """A B2BUA in a spawned process (one pjsua2 endpoint per process), stopped on exit."""
    ctx = multiprocessing.get_context("spawn")
    port = free_port(socket.SOCK_DGRAM)
    trunk_port = free_port(socket.SOCK_DGRAM)
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000", "+861058000001"],
        recording_dir=recordings,
        secret=os.urandom(32),
        region="CN",
        ring_timeout_s=ring_timeout_s,
        trunk_username=trunk_username,
        trunk_password=trunk_password,
    )
    records = ctx.Queue()
    stop = ctx.Event()
    process = ctx.Process(target=_serve, args=(config, records, stop))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield Server(port, trunk_port, recordings, records, stop)
    finally:
        stop.set()
        process.join(15)
        if process.is_alive():
            process.kill()
    assert process.exitcode == 0, "the B2BUA did not shut down cleanly"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_b2bua(tmp_path_factory.mktemp("recordings")) as srv:
        yield srv


@pytest.fixture
def server(shared_server: Server) -> Server:
    """The module's B2BUA, with no record left over from an earlier (failed) test."""
    while True:
        try:
            shared_server.records.get(timeout=0.2)
        except queue.Empty:
            return shared_server


def _wait_bound(port: int, proc: subprocess.Popen[str], limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"carrier SIPp exited at start: {out[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: SIPp is listening
        time.sleep(0.05)
    raise AssertionError(f"SIPp did not bind 127.0.0.1:{port}")


class Carrier:
    """SIPp as the carrier (UAS) on the trunk port, in the background."""

    def __init__(
        self,
        scenario: str | Path,
        port: int,
        timeout: float = 30,
        pause_ms: int = 0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.proc = sipp_server(
            scenario,
            port,
            "-m",
            "1",
            "-d",
            str(pause_ms),
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            *extra,
        )
        _wait_bound(port, self.proc)  # the agent must not dial before the carrier listens

    def result(self, timeout: float = 40) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out[-3000:]


def agent(
    server: Server,
    scenario: str,
    number: str = NUMBER,
    password: str = "secret",
    pause_ms: int = 0,
    timeout: float = 30,
    extra: tuple[str, ...] = (),
    source: str = "127.0.0.1",
) -> subprocess.CompletedProcess[str]:
    return run_sipp(
        scenario,
        f"127.0.0.1:{server.port}",
        "-s",
        number,
        "-au",
        "agent1",
        "-ap",
        password,
        # SIPp digests "sip:remote_ip:port" unless told; we insist on the Request-URI.
        "-auth_uri",
        f"{number}@127.0.0.1:{server.port}",  # SIPp adds "sip:"
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-d",
        str(pause_ms),
        "-i",  # SIPp keeps the last -i: the agent's own address
        source,
        *extra,
        timeout=timeout,
    )


def channel_rms(path: Path) -> tuple[float, float, float]:
    """(duration s, left RMS, right RMS) of a 16-bit stereo WAV."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    rms = np.sqrt(np.mean(pcm.astype(np.float64) ** 2, axis=0))
    return len(pcm) / rate, float(rms[0]), float(rms[1])


# --- answered calls ------------------------------------------------------------------------


def test_answered_call_agent_hangs_up(server: Server) -> None:
    carrier = Carrier("b2b_carrier_answer.xml", server.trunk_port)
    started = time.monotonic()
    talk = agent(server, "b2b_agent_talk.xml", pause_ms=4000)
    assert talk.returncode == 0, talk.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out
    record, live = server.record()
    elapsed = time.monotonic() - started
    assert live == 0, "a leg was left behind"
    assert (record.agent, record.number, record.answered) == ("agent1", "+86138****8000", True)
    assert record.sip_status == 200
    assert record.ended_by is Ended.AGENT
    assert record.caller_id in ("+861058000000", "+861058000001")
    assert 3.5 <= record.duration_s <= elapsed
    assert record.recording is not None and record.recording.exists()
    duration, left, right = channel_rms(record.recording)
    assert abs(duration - record.duration_s) < 1.0, (duration, record.duration_s)
    assert left > 100 and right > 100, "both parties should be heard"
    mine = sorted(p.name for p in server.recordings.iterdir() if p.name.startswith(record.call_id))
    # Per-party files are removed after the merge; the call's note stays for whoever stores it.
    assert mine == sorted([record.recording.name, f"{record.call_id}.json"])


def test_answered_call_carrier_hangs_up(server: Server) -> None:
    carrier = Carrier("b2b_carrier_hangup.xml", server.trunk_port, pause_ms=3000)
    talk = agent(server, "b2b_agent_wait_bye.xml")
    assert talk.returncode == 0, talk.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out
    record, live = server.record()
    assert live == 0, "a leg was left behind"
    assert (record.answered, record.ended_by, record.sip_status) == (True, Ended.CARRIER, 200)
    assert 2.5 <= record.duration_s <= 5
    assert record.recording is not None
    duration, left, right = channel_rms(record.recording)
    assert abs(duration - record.duration_s) < 1.0
    # Only the debtor speaks in this call: the channels must not be swapped or mixed.
    assert left < 50, left
    assert right > 100, right


def test_stopping_mid_call_hangs_up_both_legs(tmp_path: Path) -> None:
    """No orphans even when the B2BUA itself goes away: both parties get a BYE."""
    with running_b2bua(tmp_path) as srv:
        carrier = Carrier("b2b_carrier_answer.xml", srv.trunk_port)
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(agent, srv, "b2b_agent_wait_bye.xml")
            time.sleep(3)  # answered and talking by now
            srv.stop.set()
            talk = call.result(timeout=60)
        assert talk.returncode == 0, talk.stdout[-3000:]
        rc, out = carrier.result()
        assert rc == 0, out
        record, live = srv.record()
    assert live == 0
    assert (record.answered, record.ended_by) == (True, Ended.DIALGUARD)
    assert record.recording is not None and record.recording.exists()


def _rms(path: Path, start: float, end: float) -> tuple[float, float]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        w.setpos(int(start * rate))
        frames = w.readframes(int((end - start) * rate))
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.float64)
    rms = np.sqrt(np.mean(pcm**2, axis=0))
    return float(rms[0]), float(rms[1])


def test_agent_pauses_the_recording_for_card_data(server: Server) -> None:
    carrier = Carrier("b2b_carrier_answer.xml", server.trunk_port)
    talk = agent(server, "b2b_agent_pause.xml")
    assert talk.returncode == 0, talk.stdout[-3000:]
    assert carrier.result()[0] == 0
    record, _ = server.record()
    assert record.recording is not None
    [(start, end)] = record.pauses
    assert 0.7 < start < 2.0 and 2.3 < end - start < 3.5, record.pauses
    before = _rms(record.recording, 0.1, start - 0.1)
    during = _rms(record.recording, start + 0.1, end - 0.1)
    assert min(before) > 30, before  # both parties heard before the pause
    assert max(during) < 5, during  # nothing of either party while the card is read out
    assert record.recorder_alerts == 0


@pytest.mark.parametrize("hold", ["sendonly", "inactive"])
def test_agent_hold_is_relayed_to_the_carrier_and_recorded(
    server: Server, tmp_path: Path, hold: str
) -> None:
    """Refresh, hold and resume from the softphone: only the hold and the resume reach the
    carrier (its scenario fails on anything else), the call goes on, and the recording
    runs through the hold as silence, not a gap, with the hold kept in the call's record."""
    scenario = tmp_path / "agent.xml"
    template = (DATA / "sipp" / "b2b_agent_hold.xml").read_text()
    if hold == "inactive":  # softphones hold either way; the carrier sees sendonly both times
        template = template.replace("a=sendonly", "a=inactive")
        template = template.replace('regexp="a=recvonly"', 'regexp="a=inactive"')
    scenario.write_text(template)
    carrier = Carrier("b2b_carrier_hold.xml", server.trunk_port)
    started = time.monotonic()
    talk = agent(server, str(scenario))
    assert talk.returncode == 0, talk.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out  # saw a=sendonly, then a=sendrecv, then the BYE; no refresh
    record, live = server.record()
    assert live == 0, "a leg was left behind"
    assert (record.answered, record.ended_by, record.sip_status) == (True, Ended.AGENT, 200)
    assert 5.0 <= record.duration_s <= time.monotonic() - started
    [(start, end)] = record.holds
    assert 1.5 < start < 4.0 and 2.5 < end - start < 4.5, record.holds
    assert record.pauses == ()  # a hold is not a pause of the recording
    assert record.recording is not None
    duration, _, _ = channel_rms(record.recording)
    assert abs(duration - record.duration_s) < 1.0, (duration, record.duration_s)
    held = _rms(record.recording, start + 0.3, end - 0.3)
    after = _rms(record.recording, end + 0.3, duration - 0.1)
    assert held[1] < 5, held  # the debtor is not heard (nor recorded) while on hold
    assert min(after) > 30, after  # both parties are bridged again after the resume


def test_carrier_hold_is_relayed_to_the_agent(server: Server) -> None:
    carrier = Carrier("b2b_carrier_holds.xml", server.trunk_port)
    talk = agent(server, "b2b_agent_held.xml")  # expects a=sendonly, then a=sendrecv
    assert talk.returncode == 0, talk.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out  # our answers to its hold and resume were a=recvonly, a=sendrecv
    record, live = server.record()
    assert live == 0
    assert (record.answered, record.ended_by) == (True, Ended.AGENT)
    [(start, end)] = record.holds
    assert 0.5 < start < 3.0 and 1.5 < end - start < 4.0, record.holds
    assert record.recording is not None
    duration, _, _ = channel_rms(record.recording)
    assert abs(duration - record.duration_s) < 1.0, (duration, record.duration_s)


def test_watchdog_alerts_when_a_recording_stops_being_written(server: Server) -> None:
    carrier = Carrier("b2b_carrier_answer.xml", server.trunk_port)
    with ThreadPoolExecutor(1) as pool:
        talking = pool.submit(agent, server, "b2b_agent_talk.xml", pause_ms=9000)
        deadline = time.monotonic() + 20
        while not (found := list(server.recordings.glob("*-debtor.wav"))):
            assert time.monotonic() < deadline, "the call never started recording"
            time.sleep(0.1)
        time.sleep(1.0)
        found[0].unlink()  # a cleanup job, a full disk: the recording goes nowhere now
        assert talking.result().returncode == 0
    assert carrier.result()[0] == 0
    record, _ = server.record()
    assert record.recorder_alerts >= 1  # raised while the call ran (5 s after the loss)
    assert record.recording is None  # the merge cannot use what is gone
    for left in server.recordings.glob(f"{record.call_id}*"):  # kept for salvage; not ours
        left.unlink()


def test_early_media_is_relayed_and_recorded(server: Server) -> None:
    carrier = Carrier("b2b_carrier_early.xml", server.trunk_port, pause_ms=1500)
    talk = agent(server, "b2b_agent_talk.xml", pause_ms=2000)
    assert talk.returncode == 0, talk.stdout[-3000:]
    assert re.search(r"183 <-+\s+1\s", talk.stdout), "the agent did not get the 183"
    rc, out = carrier.result()
    assert rc == 0, out
    record, live = server.record()
    assert live == 0
    assert record.answered and record.ended_by is Ended.AGENT
    assert record.recording is not None
    duration, _, right = channel_rms(record.recording)
    # The recording starts with the early media (announcements, ring-back), before the answer.
    assert 1.0 < duration - record.duration_s < 2.5, (duration, record.duration_s)
    assert right > 100
    assert 1.3 <= record.ring_s < 3.0, "rang while the carrier played 1.5 s of early media"


# --- calls that never connect ------------------------------------------------------------


def refused(server: Server, tmp_path: Path, **kw: Any) -> tuple[int, str]:
    """Run the agent's 'expect a final failure' scenario; (status, its log line)."""
    log_file = tmp_path / "agent.log"
    result = agent(
        server, "b2b_agent_refused.xml", extra=("-trace_logs", "-log_file", str(log_file)), **kw
    )
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [line for line in log_file.read_text().splitlines() if line.startswith("final ")]
    assert len(lines) == 1, lines
    return int(lines[0].split()[1]), lines[0]


@pytest.mark.parametrize(
    ("carrier_says", "agent_gets"),
    [
        ((486, "Busy Here"), 486),
        ((480, "Temporarily Unavailable"), 480),
        ((404, "Not Found"), 404),
        ((603, "Decline"), 603),
        # A carrier asking us for credentials must not make the softphone prompt for some.
        ((407, "Proxy Authentication Required"), 503),
    ],
    ids=["busy", "unavailable", "not-found", "decline", "trunk-auth"],
)
def test_carrier_failure_is_relayed(
    server: Server, tmp_path: Path, carrier_says: tuple[int, str], agent_gets: int
) -> None:
    code, phrase = carrier_says
    scenario = tmp_path / "carrier.xml"
    template = (DATA / "sipp" / "b2b_carrier_reject.xml").read_text()
    scenario.write_text(template.replace("SIP/2.0 486 Busy Here", f"SIP/2.0 {code} {phrase}"))
    carrier = Carrier(scenario, server.trunk_port)
    status, _ = refused(server, tmp_path)
    assert status == agent_gets
    rc, out = carrier.result()
    assert rc == 0, out  # and it got its ACK
    record, live = server.record()
    assert live == 0
    assert (record.answered, record.sip_status, record.ended_by) == (
        False,
        agent_gets,
        Ended.CARRIER,
    )
    assert record.recording is None
    left = [p.name for p in server.recordings.iterdir() if p.name.startswith(record.call_id)]
    assert left == [], "an unanswered call leaves no file"


def test_trunk_login_answers_the_carriers_challenges(tmp_path: Path) -> None:
    """The carrier challenges 407 (its proxy), then 401 (its SBC, checked by SIPp's
    verifyauth); the proxy's digest is checked here. A carrier whose password differs
    refuses 403, the agent is told, and no leg is left."""
    config = B2buaConfig(
        "h",
        1,
        "t",
        ["+861058000000"],
        tmp_path,
        b"s",
        trunk_username="dialguard-trunk",
        trunk_password="trunk-secret",
    )
    assert "trunk-secret" not in repr(config)  # the password is never in a log line
    with pytest.raises(ValueError, match="both"):
        replace(config, trunk_password=None)
    changed = tmp_path / "carrier_changed.xml"
    scenario = (DATA / "sipp" / "b2b_carrier_auth.xml").read_text()
    changed.write_text(scenario.replace('password="trunk-secret"', 'password="rotated"'))
    (tmp_path / "recordings").mkdir()
    with running_b2bua(tmp_path / "recordings", 20, "dialguard-trunk", "trunk-secret") as srv:
        log_file = tmp_path / "carrier.log"
        carrier = Carrier(
            "b2b_carrier_auth.xml",
            srv.trunk_port,
            extra=("-trace_logs", "-log_file", str(log_file)),
        )
        talk = agent(srv, "b2b_agent_talk.xml", pause_ms=2000)
        assert talk.returncode == 0, talk.stdout[-3000:]
        rc, out = carrier.result()
        assert rc == 0, out
        bridged, live = srv.record()
        assert live == 0 and bridged.answered and bridged.ended_by is Ended.AGENT
        assert "verified=true" in log_file.read_text()
        proxy = re.search(r"proxy login:\s*(Digest .*)", log_file.read_text())
        assert proxy is not None
        answer = parse_authorization(proxy.group(1))
        ha1 = Credential.from_password(
            "dialguard-trunk", "carrier.example", "trunk-secret", (Algorithm.MD5,)
        ).ha1[Algorithm.MD5]
        assert answer.response == expected_response(
            ha1,
            "INVITE",
            answer.uri,
            answer.nonce,
            Algorithm.MD5,
            answer.qop,
            answer.nc,
            answer.cnonce,
        )

        carrier = Carrier(changed, srv.trunk_port)
        status, _ = refused(srv, tmp_path)
        assert status == 403  # the carrier's refusal, relayed
        rc, out = carrier.result()
        assert rc == 0, out
        record, live = srv.record()
    assert live == 0, "a leg was left behind"
    assert (record.answered, record.sip_status, record.ended_by) == (False, 403, Ended.CARRIER)


def test_ring_timeout_cancels_and_tells_the_agent(tmp_path: Path) -> None:
    with running_b2bua(tmp_path, ring_timeout_s=2) as srv:
        carrier = Carrier("b2b_carrier_ring.xml", srv.trunk_port)
        status, _ = refused(srv, tmp_path)
        assert status == 480
        rc, out = carrier.result()
        assert rc == 0, out  # the carrier saw our CANCEL
        record, live = srv.record()
    assert live == 0
    assert (record.sip_status, record.ended_by, record.answered) == (480, Ended.DIALGUARD, False)
    assert 1.8 <= record.ring_s < 4.0, "rang until our 2-s ring timeout gave up"


def test_stopping_while_a_call_rings_answers_503_so_the_edge_tries_another_worker(
    tmp_path: Path,
) -> None:
    """A worker told to stop hands its unanswered calls back: 503, not pjsua's hang-up code
    (the edge passes a 503 to the next worker; a 480 would be the agent's final answer)."""
    with running_b2bua(tmp_path) as srv:
        carrier = Carrier("b2b_carrier_ring.xml", srv.trunk_port)
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(refused, srv, tmp_path)
            time.sleep(2)  # ringing at the carrier by now
            srv.stop.set()
            status, line = call.result(timeout=60)
        assert status == 503, line
        rc, out = carrier.result()
        assert rc == 0, out  # the carrier saw our CANCEL
        record, live = srv.record()
    assert live == 0
    assert (record.answered, record.ended_by) == (False, Ended.DIALGUARD)


def test_cancel_before_answer_cancels_the_trunk_leg(server: Server) -> None:
    carrier = Carrier("b2b_carrier_ring.xml", server.trunk_port)
    result = agent(server, "b2b_agent_cancel.xml", pause_ms=1000)
    assert result.returncode == 0, result.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out  # the carrier saw the CANCEL
    record, live = server.record()
    assert live == 0
    assert (record.answered, record.ended_by, record.sip_status) == (False, Ended.AGENT, 487)


class SilentTrunk:
    """Listens on the trunk port and remembers anything that arrives."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.got: list[bytes] = []

    def __enter__(self) -> SilentTrunk:
        return self

    def __exit__(self, *exc: object) -> None:
        _listen(self.sock, self.got, 1.0)  # anything sent late still lands here
        self.sock.close()
        assert self.got == [], f"the trunk was contacted: {self.got[0][:80]!r}"


def test_wrong_password_is_forbidden_and_nothing_is_dialed(server: Server, tmp_path: Path) -> None:
    with SilentTrunk(server.trunk_port):
        status, _ = refused(server, tmp_path, password="wrong")
    assert status == 403
    server.no_record()  # not an agent's call: nothing to report


def test_repeated_failures_lock_the_source_out(server: Server, tmp_path: Path) -> None:
    source = "127.0.0.7"  # its own address, so the lock-out touches no other test
    with SilentTrunk(server.trunk_port):
        for _ in range(3):
            assert refused(server, tmp_path, password="wrong", source=source)[0] == 403
        # Locked out: 403 at once, no challenge, even for a softphone with the right password.
        blocked = agent(server, "b2b_agent_blocked.xml", source=source)
        assert blocked.returncode == 0, blocked.stdout[-3000:]
        # Other addresses are not affected.
        assert refused(server, tmp_path, number=REFUSED)[0] == 403
        server.record()
    server.no_record()
    time.sleep(COOLOFF_S + 0.5)
    carrier = Carrier("b2b_carrier_reject.xml", server.trunk_port)
    assert refused(server, tmp_path, source=source)[0] == 486  # cool-off over
    assert carrier.result()[0] == 0
    server.record()


def test_no_credentials_get_a_digest_challenge(server: Server) -> None:
    with SilentTrunk(server.trunk_port):
        result = agent(server, "b2b_agent_noauth.xml")
    assert result.returncode == 0, result.stdout[-3000:]
    server.no_record()


def test_policy_refusal_names_the_rule(server: Server, tmp_path: Path) -> None:
    with SilentTrunk(server.trunk_port):
        status, line = refused(server, tmp_path, number=REFUSED)
    assert status == 403
    assert "quiet_hours" in line
    record, live = server.record()
    assert (record.sip_status, record.rule, record.number) == (403, "quiet_hours", "+86139****9000")
    assert record.ring_s == 0.0, "nothing was dialed"
    assert live == 0


def test_a_decision_that_cannot_be_taken_refuses_the_call(server: Server, tmp_path: Path) -> None:
    """Fail closed: no answer from the call policy (its database is down) is not a yes."""
    with SilentTrunk(server.trunk_port):
        status, line = refused(server, tmp_path, number="+" + UNDECIDED)
    assert status == 503
    assert "decision_unavailable: the database did not answer" in line
    record, _ = server.record()
    assert (record.sip_status, record.rule, record.caller_id) == (503, "decision_unavailable", None)
    assert "the call is not placed" in record.sip_reason


def test_fails_closed_without_a_writable_recording_directory(
    server: Server, tmp_path: Path
) -> None:
    away = server.recordings.with_name(server.recordings.name + ".away")
    server.recordings.rename(away)
    try:
        with SilentTrunk(server.trunk_port):
            status, line = refused(server, tmp_path)
    finally:
        away.rename(server.recordings)
    assert status == 500
    assert "recording unavailable" in line
    record, _ = server.record()
    assert (record.sip_status, record.answered, record.recording) == (500, False, None)


@pytest.mark.parametrize(
    ("fixture", "method", "uri", "auth"),
    [
        (  # compact Call-ID ("i"), a folded Authorization header, a body
            "invite_compact_folded_auth.txt",
            "INVITE",
            "sip:138@h:5060;user=phone",
            'Digest username="a", realm="r"',
        ),
        ("options_lf_only.txt", "OPTIONS", "sip:h", None),  # bare LF line ends
    ],
)
def test_sip_request_parsing(fixture: str, method: str, uri: str, auth: str | None) -> None:
    request = parse_request(sip_message(fixture))
    assert (request.method, request.uri, request.first("authorization")) == (method, uri, auth)
    assert request.first("call-id") is not None  # compact "i" and long form alike


@pytest.mark.parametrize(
    ("uri", "user"),
    [
        ("sip:13800138000@127.0.0.1:5060", "13800138000"),
        ("sips:+8613800138000@h;user=phone", "+8613800138000"),
        ("tel:+8613800138000;phone-context=x", "+8613800138000"),
        ("sip:h", "h"),
    ],
)
def test_uri_user(uri: str, user: str) -> None:
    assert uri_user(uri) == user


@pytest.mark.parametrize(
    ("address", "host"),
    [("127.0.0.1:5070", "127.0.0.1"), ("[::1]:5070", "::1"), ("10.0.0.1", "10.0.0.1")],
)
def test_host_of(address: str, host: str) -> None:
    assert host_of(address) == host


def test_garbage_is_not_a_request() -> None:
    with pytest.raises(ValueError, match="not a SIP request"):
        parse_request(sip_message("response_200_bare.txt"))


def test_silent_trunk_helper_sees_nothing() -> None:
    # Guard for the "carrier never sees an INVITE" tests: the helper really listens.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        got: list[bytes] = []
        t = threading.Thread(target=_listen, args=(rx, got, 0.5))
        t.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"INVITE x", rx.getsockname())
        t.join()
    assert got == [b"INVITE x"]


def _listen(sock: socket.socket, got: list[bytes], seconds: float) -> None:
    sock.settimeout(0.1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65535))
        except TimeoutError:
            continue

"""A worker behind the Kamailio edge, with SIPp playing the edge (and anyone going around it).

Behind an edge the worker takes a call only from the edge's address with the
edge's mark over the Call-ID and agent (dialer.edge.trust); it never asks for
a password, so a worker port found by a scan yields nothing to guess. A full
worker answers 503 so the edge tries the next one, and a click-to-call rings
the agent through the edge.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dialer.calls import CallRecord, Ended
from dialer.edge.trust import EdgeTrust, mark, verify
from dialer.sip.b2bua import B2bua
from dialer.sip.config import B2buaConfig
from dialer.sip.messages import parse_request
from dialer.sip.probe import wait_answering
from tests.dialer.sip.test_b2bua import PCAP, Carrier, channel_rms
from tests.helpers import DATA, free_port, run_sipp

SECRET = secrets.token_hex(16)
NUMBER = "13800138000"
EDGE = "127.0.0.1"  # where the edge sends from; 127.0.0.2 plays a source going around it

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


def _allow(
    e164: str, request_id: int | None = None, call_id: str | None = None, agent: str = ""
) -> tuple[bool, str, str]:
    return True, "allowed", "Allowed"


class _Lines(logging.Handler):
    def __init__(self, lines: Any) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "dialer.sip.b2bua":
            self.lines.put(record.getMessage())


def _serve(config: B2buaConfig, records: Any, lines: Any, requests: Any, stop: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dialer.sip.b2bua").setLevel(logging.INFO)
    logging.getLogger().addHandler(_Lines(lines))

    def next_request() -> tuple[int, str, str, str] | None:
        try:
            got: tuple[int, str, str, str] = requests.get_nowait()
        except queue.Empty:
            return None
        return got

    b2b = B2bua(
        config,
        lambda username: None,  # no login is ever checked here: the edge did it
        _allow,
        records.put,
        next_request=next_request,
    )
    b2b.run(stop)


@dataclass
class Worker:
    port: int
    trunk_port: int
    edge_port: int
    recordings: Path
    records: Any
    lines: Any
    requests: Any

    def record(self, timeout: float = 20) -> CallRecord:
        got: CallRecord = self.records.get(timeout=timeout)
        return got

    def refusal_lines(self) -> list[str]:
        found: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                return found
            if "refused (403)" in line:
                found.append(line)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    ctx = multiprocessing.get_context("spawn")
    port, trunk_port, edge_port = (free_port(socket.SOCK_DGRAM) for _ in range(3))
    recordings = tmp_path_factory.mktemp("recordings")
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=recordings,
        secret=os.urandom(32),
        edge=EdgeTrust(SECRET, frozenset({EDGE}), f"127.0.0.1:{edge_port}"),
    )
    records, lines, requests, stop = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_serve, args=(config, records, lines, requests, stop))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)  # OPTIONS: answered behind an edge too
        yield Worker(port, trunk_port, edge_port, recordings, records, lines, requests)
    finally:
        stop.set()
        process.join(15)
        if process.is_alive():
            process.kill()
    assert process.exitcode == 0, "the worker did not shut down cleanly"


def edge_call(
    worker: Worker,
    scenario: str | Path,
    *,
    agent: str = "agent1",
    header: str | None = None,
    source: str = EDGE,
    pause_ms: int = 0,
    call_id: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """SIPp as the edge forwarding an INVITE, marked for its Call-ID unless told otherwise."""
    cid = call_id or f"{secrets.token_hex(8)}@edge"
    value = header if header is not None else mark(SECRET, int(time.time()), cid, agent)
    return run_sipp(
        str(scenario),
        f"127.0.0.1:{worker.port}",
        "-s",
        NUMBER,
        "-cid_str",  # with -m 1, the Call-ID itself: the mark is over it
        cid,
        "-key",
        "agent",
        agent,
        "-key",
        "mark",
        value,
        "-mi",
        source,
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-d",
        str(pause_ms),
        "-i",  # SIPp keeps the last -i
        source,
        timeout=30,
    )


def _trunk_silent(port: int, seconds: float = 1.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trunk:
        trunk.bind(("127.0.0.1", port))
        trunk.settimeout(seconds)
        try:
            trunk.recv(65535)
        except TimeoutError:
            return True
    return False


def _refused(tmp_path: Path, code: int) -> Path:
    template = (DATA / "sipp" / "from_edge_refused.xml").read_text()
    if code == 503:  # a full worker: the edge is told when to come back
        template = template.replace(
            '<recv response="403"/>',
            '<recv response="503"><action><ereg regexp="^ *[0-9]+" search_in="hdr" '
            'header="Retry-After:" check_it="true" assign_to="retry"/>'
            '<log message="retry after [$retry]"/></action></recv>',
        )
    scenario = tmp_path / f"refused_{code}.xml"
    scenario.write_text(template)
    return scenario


@pytest.mark.parametrize(
    ("why", "header", "source"),
    [
        ("no mark", "", EDGE),
        ("a forged mark", "1796000000;" + "0" * 64, EDGE),
        ("another secret's mark", None, EDGE),
        ("a good mark from around the edge", None, "127.0.0.2"),
    ],
)
def test_unmarked_or_unknown_source_gets_403_and_no_trunk_call(
    worker: Worker, tmp_path: Path, why: str, header: str | None, source: str
) -> None:
    cid = f"{secrets.token_hex(8)}@edge"
    if why == "another secret's mark":
        header = mark("not-" + SECRET, int(time.time()), cid, "agent1")
    with ThreadPoolExecutor(1) as pool:
        silent = pool.submit(_trunk_silent, worker.trunk_port)
        time.sleep(0.2)
        result = edge_call(
            worker, _refused(tmp_path, 403), header=header, source=source, call_id=cid
        )
        assert result.returncode == 0, (why, result.stdout[-2000:], result.stderr[-2000:])
        assert silent.result(), f"{why}: the trunk was dialed"
    with pytest.raises(queue.Empty):  # not an agent's attempt: nothing is booked
        worker.records.get(timeout=0.5)


def test_refusals_are_logged_once_a_minute_per_source(worker: Worker, tmp_path: Path) -> None:
    worker.refusal_lines()  # what earlier tests left
    for _ in range(3):
        result = edge_call(worker, _refused(tmp_path, 403), header="", source="127.0.0.3")
        assert result.returncode == 0, result.stdout[-2000:]
    lines = worker.refusal_lines()
    assert len(lines) == 1, lines
    assert "127.0.0.3" in lines[0]


def test_marked_call_from_the_edge_is_bridged_and_recorded(worker: Worker) -> None:
    carrier = Carrier("b2b_carrier_answer.xml", worker.trunk_port)
    talk = edge_call(worker, DATA / "sipp" / "from_edge_talk.xml", pause_ms=3000)
    assert talk.returncode == 0, talk.stdout[-3000:]
    rc, out = carrier.result()
    assert rc == 0, out
    record = worker.record()
    assert (record.agent, record.answered, record.ended_by) == ("agent1", True, Ended.AGENT)
    assert record.recording is not None and record.recording.exists()
    _, left, right = channel_rms(record.recording)
    assert left > 100 and right > 100, "both parties should be heard"


def test_a_third_call_to_a_full_worker_gets_503(worker: Worker, tmp_path: Path) -> None:
    carrier = Carrier("b2b_carrier_answer.xml", worker.trunk_port, extra=("-m", "2"))
    talk = DATA / "sipp" / "from_edge_talk.xml"
    with ThreadPoolExecutor(2) as pool:
        calls = [
            pool.submit(edge_call, worker, talk, agent=name, pause_ms=5000)
            for name in ("agent1", "agent2")
        ]
        deadline = time.monotonic() + 15
        while len(list(worker.recordings.glob("*-debtor.wav"))) < 2:
            assert time.monotonic() < deadline, "the two calls never started"
            time.sleep(0.1)
        time.sleep(0.5)  # both trunk legs placed
        third = edge_call(worker, _refused(tmp_path, 503), agent="agent3")
        assert third.returncode == 0, third.stdout[-2000:]
        for call in calls:
            assert call.result(timeout=40).returncode == 0
    assert carrier.result()[0] == 0
    agents = sorted(worker.record().agent for _ in range(2))
    assert agents == ["agent1", "agent2"]  # the third was never an attempt


def test_click_to_call_rings_the_agent_through_the_edge(worker: Worker) -> None:
    """The INVITE goes to the edge for sip:<agent>@<realm>, marked over its own Call-ID."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as edge:
        edge.bind(("127.0.0.1", worker.edge_port))
        edge.settimeout(10)
        worker.requests.put((41, "agent7", "sip:agent7@192.0.2.9:5060", "+8613800138000"))
        data, sender = edge.recvfrom(65535)
        request = parse_request(data.decode())
        assert request.method == "INVITE"
        assert request.uri == "sip:agent7@dialguard"
        route = request.first("route") or ""  # loose-routed to the edge, which looks up the agent
        assert route.startswith(f"<sip:127.0.0.1:{worker.edge_port};") and ";lr" in route
        call_id = request.first("call-id") or ""
        assert verify(
            SECRET,
            request.first("x-dialguard-edge"),
            call_id,
            request.first("x-dialguard-agent"),
            time.time(),
        )
        assert request.first("x-dialguard-agent") == "agent7"
        # The edge finds no registration: 480, and the request fails without a trunk call.
        via = request.first("via") or ""
        answer = (
            "SIP/2.0 480 Temporarily Unavailable\r\n"
            f"Via: {via}\r\nFrom: {request.first('from')}\r\n"
            f"To: {request.first('to')};tag=edge1\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {request.first('cseq')}\r\nContent-Length: 0\r\n\r\n"
        )
        edge.sendto(answer.encode(), sender)
    record = worker.record()
    assert (record.request_id, record.agent, record.answered) == (41, "agent7", False)
    assert record.caller_id is None  # nothing was dialed

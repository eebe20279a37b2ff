"""An INVITE flood against a real Kamailio edge while legitimate agents call through it.

Shared by the flood test (tests/dialer/edge/test_flood.py) and its benchmark
(bench/edge_flood.py), so the figure in bench/README.md and the test's
assertion come from the same harness.

- **Legitimate agents**: `agents` softphones, each from its own address
  (127.0.0.10 up; or all from 127.0.0.10, a floor behind NAT), each placing
  one call every `call_every_s` seconds, staggered: the *normal call rate*
  is `agents / call_every_s` calls a second.
  A call is the full digest exchange (INVITE, 407, ACK, INVITE with
  credentials, 200, ACK, `hold_s` talking, BYE, 200). Like a real softphone
  over UDP, an agent retransmits a request that gets no answer (RFC 3261
  timer A: 0.5 s, doubling) and gives up after `give_up_s`.
- **The flood**: `multiple` times the normal rate of unauthenticated
  requests (INVITE with SDP by default, as an attacker's dialer sends them),
  from `sources` addresses (127.0.0.100 up) taking turns, each with a fresh
  Call-ID and branch, never answering a challenge. The flooders read what
  comes back, so the run can say how much of the flood the edge answered
  (407, or 401 for REGISTER) and how much it dropped (a banned source).

What is counted: calls set up (the authenticated INVITE answered 200 and its
BYE answered 200) among calls attempted; the flood's requests that reached a
worker (their Call-IDs start with "flood-"; the workers' SIPp traces are
searched); the edge's bans; the edge's CPU (its process group, from /proc)
apart from this harness's own (`CpuSplit`, which the edge benchmarks use too,
through bench/edge_harness.py: tests do not import bench/).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dialer.edge.bans import Ban, current_bans
from tests.dialer.edge.conftest import AGENTS, Edge
from tests.dialer.edge.sipclient import Agent, Reply, authorization

SDP = (
    "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
#: RFC 3261's T1: a UDP request unanswered this long is sent again, then at 2x, 4x ...
T1_S = 0.5
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class FloodPlan:
    agents: int = 20
    call_every_s: float = 2.0  # each agent places a call this often
    hold_s: float = 0.5
    multiple: float = 10.0  # the flood's rate, in normal call rates
    sources: int = 1
    seconds: float = 20.0  # agents start calls for this long
    method: str = "INVITE"  # or REGISTER
    give_up_s: float = 8.0  # a softphone's patience for one request (timer B is 32 s)
    one_address: bool = False  # every agent behind one address (a floor behind NAT)

    @property
    def normal_rate(self) -> float:
        """Calls a second the agents place together."""
        return self.agents / self.call_every_s

    @property
    def flood_rate(self) -> float:
        return self.normal_rate * self.multiple


@dataclass
class FloodResult:
    plan: FloodPlan
    attempted: int = 0
    set_up: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    retransmissions: int = 0  # legitimate requests sent again after an unanswered T1
    setup_s: list[float] = field(default_factory=list)  # first INVITE to the 200
    flood_sent: int = 0
    flood_answers: Counter[int] = field(default_factory=Counter)  # status -> replies
    flood_at_workers: int = 0
    worker_invites: int = 0
    bans: list[Ban] = field(default_factory=list)
    ban_lines: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    edge_cpu_s: float = 0.0
    harness_cpu_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before, after

    @property
    def share(self) -> float:
        return self.set_up / self.attempted if self.attempted else 0.0


class CallFailed(Exception):
    """A legitimate call that was not set up; the message says where it stopped."""


def _group_stats(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """Each live process in the process group with its /proc/PID/stat fields after the name.

    The edge's Kamailio children share the group of the process `EdgeProcess` started, so
    the group is the edge, and processes that end between the listing and the read are
    passed over rather than failing a measurement.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp, after state and ppid
            yield int(entry.name), fields


def group_pids(pgid: int) -> list[int]:
    """The live processes of the process group (the edge's children), for a per-thread meter."""
    return [pid for pid, _ in _group_stats(pgid)]


def group_cpu_s(pgid: int) -> float:
    """User + system CPU of every live process in the process group (the edge's children)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_stats(pgid))
    return ticks / _TICK  # utime, stime


def own_cpu_s() -> float:
    """User + system CPU of this process: the harness (agents, flooders), kept apart."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSplit:
    """The edge's CPU and the harness's own from one moment on, so neither counts the other.

    The agents run in this process on the same cores as the edge: a figure for the edge
    that included them (or a load figure for the machine) would be the harness's cost too.
    """

    pgid: int
    edge_s: float
    own_s: float

    @classmethod
    def start(cls, pgid: int) -> CpuSplit:
        """Readings now for the edge's process group `pgid` and for this process."""
        return cls(pgid, group_cpu_s(pgid), own_cpu_s())

    def since(self) -> tuple[float, float]:
        """CPU seconds since `start`: the edge's, then the harness's."""
        return group_cpu_s(self.pgid) - self.edge_s, own_cpu_s() - self.own_s


class _Phone:
    """One agent's softphone over UDP: retransmits as RFC 3261 says, matches its replies."""

    def __init__(self, edge: Edge, source: str, plan: FloodPlan, result: FloodResult) -> None:
        self.agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], source=source)
        self.plan = plan
        self.result = result
        self.lock = threading.Lock()

    def _reply(self, call_id: str, cseq: str, wait_s: float) -> Reply | None:
        """The next reply to (call_id, cseq) within wait_s; others (late retransmissions) skip."""
        deadline = time.monotonic() + wait_s
        sock = self.agent._connect()
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            reply = self.agent.receive()
            if reply is None:
                return None
            if reply.header("call-id") == call_id and reply.header("cseq") == cseq:
                return reply
            if reply.status == 200 and (reply.header("cseq") or "").endswith("INVITE"):
                self._ack_stray(reply)
        return None

    def _ack_stray(self, reply: Reply) -> None:
        """A 200 retransmitted after its ACK was lost: ACK it again so the worker stops."""
        routes = list(reversed(reply.all("record-route")))
        target = re.search(r"<([^>]+)>", reply.header("contact") or "")
        if target is None:
            return
        call_id = reply.header("call-id") or ""
        cseq = int((reply.header("cseq") or "0").split()[0])
        to = re.search(r"sip:([^@]+)@", reply.header("to") or "")
        self.agent.send(
            self.agent._ack(
                target.group(1), call_id, cseq, to.group(1) if to else "", reply, routes
            )
        )

    def transact(self, data: bytes, call_id: str, cseq: str) -> Reply:
        """Send a request, again on each unanswered interval, until a final reply."""
        interval, sent_at, waited = T1_S, time.monotonic(), 0.0
        self.agent.send(data)
        while True:
            reply = self._reply(call_id, cseq, interval)
            if reply is not None and reply.status >= 200:
                return reply
            if reply is not None:  # provisional: the server has it, stop retransmitting
                final = self._reply(call_id, cseq, self.plan.give_up_s)
                if final is None or final.status < 200:
                    raise CallFailed(f"no final answer to {cseq} after its provisional")
                return final
            waited = time.monotonic() - sent_at
            if waited >= self.plan.give_up_s:
                raise CallFailed(f"no answer to {cseq} in {self.plan.give_up_s:.0f} s")
            self.agent.send(data)
            with self.lock:
                self.result.retransmissions += 1
            interval = min(interval * 2, 4.0)

    def call(self, number: str) -> float:
        """One call set up and ended; seconds from the first INVITE to the 200."""
        agent = self.agent
        uri = f"sip:{number}@{agent.realm}"
        call_id = secrets.token_hex(10)
        began = time.monotonic()
        first = self.transact(
            agent.request("INVITE", uri, call_id, 1, to_user=number, body=SDP),
            call_id,
            "1 INVITE",
        )
        if first.status != 407:
            raise CallFailed(f"first INVITE answered {first.status}")
        agent.send(agent._ack(uri, call_id, 1, number, first, []))
        challenge = first.header("proxy-authenticate") or ""
        auth = authorization(challenge, agent.user, agent.realm, agent.password, "INVITE", uri)
        answer = self.transact(
            agent.request("INVITE", uri, call_id, 2, auth=auth, to_user=number, body=SDP),
            call_id,
            "2 INVITE",
        )
        took = time.monotonic() - began
        if answer.status != 200:
            if answer.status >= 300:
                agent.send(agent._ack(uri, call_id, 2, number, answer, []))
            raise CallFailed(f"authenticated INVITE answered {answer.status}")
        routes = list(reversed(answer.all("record-route")))
        target = re.search(r"<([^>]+)>", answer.header("contact") or "")
        remote = target.group(1) if target else uri
        agent.send(agent._ack(remote, call_id, 2, number, answer, routes))
        time.sleep(self.plan.hold_s)
        bye = agent.request("BYE", remote, call_id, 3, to_user=number).decode()
        ended = self.transact(agent._dialog(bye, answer, routes).encode(), call_id, "3 BYE")
        if ended.status != 200:
            raise CallFailed(f"BYE answered {ended.status}")
        return took

    def close(self) -> None:
        self.agent.close()


def _flood_request(method: str, edge_port: int, source: str, port: int, n: int) -> bytes:
    """An unauthenticated INVITE (with SDP) or REGISTER, as an attacker's tool sends them."""
    call_id = f"flood-{n}-{secrets.token_hex(4)}"
    user = f"{1000 + n % 9000}"
    uri = f"sip:13800{n % 1000000:06d}@127.0.0.1" if method == "INVITE" else "sip:127.0.0.1"
    body = SDP if method == "INVITE" else ""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag={secrets.token_hex(4)}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:{user}@{source}:{port}>",
        "User-Agent: friendly-scanner",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class _Flood(threading.Thread):
    """`rate` requests a second from `sources` addresses in turn, until stopped."""

    def __init__(self, edge: Edge, plan: FloodPlan, result: FloodResult) -> None:
        super().__init__(daemon=True)
        self.edge = edge
        self.plan = plan
        self.result = result
        self.stopping = threading.Event()
        self.socks: list[socket.socket] = []
        for i in range(plan.sources):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.0.{100 + i}", 0))
            sock.setblocking(False)
            self.socks.append(sock)

    def _drain(self) -> None:
        for sock in self.socks:
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                with contextlib.suppress(IndexError, ValueError):
                    self.result.flood_answers[int(data.split(b" ", 2)[1])] += 1

    def run(self) -> None:
        tick = 0.01
        began = time.monotonic()
        n = 0
        while not self.stopping.is_set():
            due = int((time.monotonic() - began) * self.plan.flood_rate)
            while n < due:
                sock = self.socks[n % len(self.socks)]
                source, port = sock.getsockname()
                data = _flood_request(self.plan.method, self.edge.port, source, port, n)
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(data, ("127.0.0.1", self.edge.port))
                n += 1
            self.result.flood_sent = n
            self._drain()
            time.sleep(tick)
        time.sleep(0.3)
        self._drain()

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def run_flood(edge: Edge, plan: FloodPlan) -> FloodResult:
    """The flood and the agents together; what the agents got and what the edge did."""
    result = FloodResult(plan)
    lock = threading.Lock()
    log_before = len(edge.log())
    load_before = os.getloadavg()[0]
    cpu = CpuSplit.start(edge.process.pid or 0)
    began = time.monotonic()
    stop_at = began + plan.seconds
    flood = _Flood(edge, plan, result)

    def agent_loop(i: int) -> None:
        source = "127.0.0.10" if plan.one_address else f"127.0.0.{10 + i}"
        phone = _Phone(edge, source, plan, result)
        due = began + i * plan.call_every_s / plan.agents
        n = 0
        try:
            while due < stop_at:
                time.sleep(max(0.0, due - time.monotonic()))
                with lock:
                    result.attempted += 1
                try:
                    took = phone.call(f"1{i:02d}{n:08d}")
                except CallFailed as exc:
                    with lock:
                        result.failures[str(exc)] += 1
                    phone.close()  # a fresh socket, as a softphone starts over
                    phone = _Phone(edge, source, plan, result)
                else:
                    with lock:
                        result.set_up += 1
                        result.setup_s.append(took)
                n += 1
                due += plan.call_every_s
        finally:
            phone.close()

    flood.start()
    agents = [threading.Thread(target=agent_loop, args=(i,)) for i in range(plan.agents)]
    try:
        for thread in agents:
            thread.start()
        for thread in agents:
            thread.join()
    finally:
        flood.stopping.set()
        flood.join()
        flood.close()
    result.wall_s = time.monotonic() - began
    result.edge_cpu_s, result.harness_cpu_s = cpu.since()
    result.load = (load_before, os.getloadavg()[0])
    result.bans = current_bans(edge.config.rpc_port)
    result.ban_lines = [
        line.split("edge: ", 1)[1]
        for line in edge.log()[log_before:].splitlines()
        if "edge: ban " in line
    ]
    for worker in edge.workers:
        invites = worker.invites()
        result.worker_invites += len(invites)
        result.flood_at_workers += sum("Call-ID: flood-" in invite for invite in invites)
    return result

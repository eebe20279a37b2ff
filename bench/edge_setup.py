"""What the Kamailio edge adds to a call's setup, and how many logged-in calls a second it passes.

Conditions: the edge `dialguard up` runs (dialer/edge/config.py) on 127.0.0.1
over a migrated SQLite database, in front of SIPp user agent servers standing
in for the dialer workers (they answer at once: what is measured is the edge,
not pjsua2). One Python agent per thread (tests/dialer/edge/sipclient.py)
speaks UDP.

- **Setup delay** (`--calls` calls one after another): from sending the
  INVITE that answers the edge's 407 challenge to its 200, through the edge
  (digest check against the database, dispatch by load, record-route, the
  worker mark), against the same INVITE sent straight to a worker. The
  difference is what the edge adds.
- **Throughput** (`--threads` agents calling back to back for `--seconds`):
  authenticated calls set up and ended (INVITE, 407, INVITE, 200, ACK, BYE)
  per second (the flood ban lifted: one agent here is far faster than a person),
  and the CPU the edge's processes used, read from /proc apart
  from the harness's own (this process) and SIPp's.

Run: `python bench/edge_setup.py [--calls 300] [--threads 8] [--seconds 20]`.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the tests' edge, agents and flood harness
sys.path.insert(0, str(BENCH))  # edge_harness, as a script sees it

from edge_harness import CpuSplit, bench_parser, percentile, running_edge

from dialer.edge.config import EdgeBans
from tests.dialer.edge.conftest import AGENTS, Edge
from tests.dialer.edge.sipclient import Agent, authorization

SDP = (
    "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


def _timed_call(agent: Agent, number: str, challenged: bool) -> float:
    """Seconds from the (authenticated) INVITE to its 200; the call is then ACKed and ended."""
    uri = f"sip:{number}@{agent.realm}"
    call_id = secrets.token_hex(10)
    cseq, auth = 1, None
    if challenged:
        agent.send(agent.request("INVITE", uri, call_id, 1, to_user=number, body=SDP))
        first = agent.final()
        if first is None or first.status != 407:
            raise RuntimeError(f"expected 407, got {first.status if first else 'nothing'}")
        agent.send(agent._ack(uri, call_id, 1, number, first, []))
        challenge = first.header("proxy-authenticate") or ""
        auth = authorization(challenge, agent.user, agent.realm, agent.password, "INVITE", uri)
        cseq = 2
    began = time.perf_counter()
    agent.send(agent.request("INVITE", uri, call_id, cseq, auth=auth, to_user=number, body=SDP))
    answer = agent.final()
    took = time.perf_counter() - began
    if answer is None or answer.status != 200:
        raise RuntimeError(f"expected 200, got {answer.status if answer else 'nothing'}")
    routes = list(reversed(answer.all("record-route")))
    target = re.search(r"<([^>]+)>", answer.header("contact") or "")
    remote = target.group(1) if target else uri
    agent.send(agent._ack(remote, call_id, cseq, number, answer, routes))
    bye = agent.request("BYE", remote, call_id, cseq + 1, to_user=number).decode()
    agent.send(agent._dialog(bye, answer, routes).encode())
    ended = agent.final()
    if ended is None or ended.status != 200:
        raise RuntimeError("the BYE was not answered")
    return took


def setup_delay(edge: Edge, calls: int) -> None:
    through: list[float] = []
    direct: list[float] = []
    worker = edge.workers[0]
    via_edge = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])
    straight = Agent("127.0.0.1", worker.port, "alice", AGENTS["alice"])
    try:
        for n in range(calls):
            through.append(_timed_call(via_edge, f"1380013{n % 10000:04d}", challenged=True))
            direct.append(_timed_call(straight, f"1390013{n % 10000:04d}", challenged=False))
    finally:
        via_edge.close()
        straight.close()
    ms = 1000.0
    p50_t, p99_t = percentile(through, 0.5) * ms, percentile(through, 0.99) * ms
    p50_d, p99_d = percentile(direct, 0.5) * ms, percentile(direct, 0.99) * ms
    print(f"setup, {calls} calls one after another (authenticated INVITE -> 200):")
    print(f"  through the edge: p50 {p50_t:.2f} ms, p99 {p99_t:.2f} ms")
    print(f"  straight to a worker: p50 {p50_d:.2f} ms, p99 {p99_d:.2f} ms")
    print(f"  the edge adds: p50 {p50_t - p50_d:.2f} ms, p99 {p99_t - p99_d:.2f} ms")


def throughput(edge: Edge, threads: int, seconds: float) -> None:
    done = [0] * threads
    failed = [0] * threads
    reasons: dict[str, int] = {}
    stop = time.monotonic() + seconds

    def agent_loop(i: int) -> None:
        # each agent from its own address, as on a floor: one source calling back to back
        # at this rate is a flood the edge bans (pike), which is not what is measured here
        source = f"127.0.0.{10 + i}"
        agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], source=source)
        n = 0
        try:
            while time.monotonic() < stop:
                try:
                    _timed_call(agent, f"13{i:02d}{n % 10**7:07d}", challenged=True)
                    done[i] += 1
                except RuntimeError as exc:
                    failed[i] += 1
                    reasons[str(exc)] = reasons.get(str(exc), 0) + 1
                    agent.close()
                    time.sleep(0.1)
                    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], source=source)
                n += 1
        finally:
            agent.close()

    cpu = CpuSplit.start(edge.process.pid or 0)
    began = time.monotonic()
    workers = [threading.Thread(target=agent_loop, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    wall = time.monotonic() - began
    edge_cpu, own_cpu = cpu.since()
    total = sum(done)
    print(f"throughput, {threads} agents calling back to back for {wall:.1f} s:")
    if reasons:
        print("  failures: " + "; ".join(f"{why} ({n})" for why, n in sorted(reasons.items())))
    print(
        f"  {total / wall:.0f} authenticated calls a second set up and ended, {sum(failed)} failed"
    )
    print(
        f"  edge CPU {edge_cpu / wall * 100:.0f}% of one core "
        f"({edge_cpu / max(total, 1) * 1000:.2f} ms a call); "
        f"harness (agents) {own_cpu / wall * 100:.0f}%, not counted in the edge's figure"
    )


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(
        f"conditions: {os.cpu_count()} cores, edge and {args.workers} SIPp workers "
        "on 127.0.0.1, UDP, SQLite"
    )
    # An agent here calls back to back, dozens of requests a second from one address:
    # a flood by the edge's default (64 in 2 s). The limit is lifted so that what is
    # measured is the edge's capacity; the flood bench measures the bans.
    bans = EdgeBans(flood_requests=1_000_000)
    with running_edge(args.workers, bans) as edge:
        setup_delay(edge, args.calls)
        throughput(edge, args.threads, args.seconds)


if __name__ == "__main__":
    main()

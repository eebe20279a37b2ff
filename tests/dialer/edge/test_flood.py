"""An INVITE flood at 10x the normal call rate, from one source and from fifty, while twenty
agents call through the edge: at least 99% of their calls are set up (issue 13), the flood
never reaches a worker, and only the flooder is banned, also when every agent calls from
one NAT address. The figures: bench/edge_flood.py."""

from __future__ import annotations

import contextlib
import socket

import pytest

from dialer.edge.bans import current_bans
from dialer.edge.config import EdgeBans
from tests.dialer.edge.conftest import AGENTS, StartEdge
from tests.dialer.edge.flood import FloodPlan, FloodResult, run_flood
from tests.dialer.edge.sipclient import Agent

AGENT_ADDRESSES = {f"127.0.0.{10 + i}" for i in range(20)}


def _flood(start_edge: StartEdge, sources: int, method: str = "INVITE") -> FloodResult:
    # 20 agents, one call each every 2 s: 10 calls a second; the flood 100 requests a second
    edge = start_edge(workers=10, bans=EdgeBans())
    plan = FloodPlan(
        agents=20, call_every_s=2.0, multiple=10, sources=sources, seconds=8, method=method
    )
    result = run_flood(edge, plan)
    assert result.attempted >= 20 * 4
    assert result.share >= 0.99, (result.failures, edge.log()[-3000:])
    # unauthenticated requests are answered (or dropped) by the edge, never passed on
    assert result.flood_at_workers == 0
    assert not {ban.source for ban in result.bans} & AGENT_ADDRESSES
    return result


def test_a_flood_from_one_source_is_banned_and_the_agents_call_on(
    start_edge: StartEdge,
) -> None:
    result = _flood(start_edge, sources=1)
    assert [(ban.kind, ban.source) for ban in result.bans] == [("flood", "127.0.0.100")]
    assert result.ban_lines == ["ban flood source=127.0.0.100 seconds=60"]
    # after the ban the flooder hears nothing: most of its INVITEs went unanswered
    assert sum(result.flood_answers.values()) < result.flood_sent / 4


@pytest.mark.parametrize(("method", "challenge"), [("INVITE", 407), ("REGISTER", 401)])
def test_a_flood_from_fifty_sources_is_challenged_and_the_agents_call_on(
    start_edge: StartEdge, method: str, challenge: int
) -> None:
    """Fifty sources at 2 requests a second each stay under the flood ban: the edge answers
    every one with a challenge itself, and bans no one."""
    result = _flood(start_edge, sources=50, method=method)
    assert result.bans == []
    assert set(result.flood_answers) == {challenge}
    # all answered (a few of the last may still be on their way when the run ends)
    assert result.flood_answers[challenge] >= 0.98 * result.flood_sent > 0


def test_a_floor_behind_one_address_calls_on_beside_a_flood(start_edge: StartEdge) -> None:
    """Twenty agents behind one NAT address send 25 requests a second from it, over the
    flood ban's 64 in 2 s: once they have logged in, their address gets 16 times that."""
    edge = start_edge(workers=10)
    plan = FloodPlan(multiple=10, sources=1, seconds=8, one_address=True)
    result = run_flood(edge, plan)
    assert result.share >= 0.99, (result.failures, edge.log()[-3000:])
    assert [(ban.kind, ban.source) for ban in result.bans] == [("flood", "127.0.0.100")]
    assert result.flood_at_workers == 0


def _burst(source: str, port: int, count: int) -> int:
    """`count` OPTIONS at once from `source`, then how many were answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(0.5)
        me = sock.getsockname()[1]
        for n in range(count):
            sock.sendto(
                (
                    f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {source}:{me};branch=z9hG4bKburst{n}\r\n"
                    f"From: <sip:f@{source}>;tag={n}\r\nTo: <sip:127.0.0.1>\r\n"
                    f"Call-ID: burst-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
        answered = 0
        with contextlib.suppress(TimeoutError):
            while True:
                sock.recv(65535)
                answered += 1
        return answered


def test_an_agents_address_has_a_higher_flood_limit_not_none(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1, bans=EdgeBans(flood_requests=10, agent_source_factor=4))
    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], source="127.0.0.11")
    try:
        reply = agent.register()
        assert reply is not None and reply.status == 200
    finally:
        agent.close()
    # 25 requests at once: over a stranger's limit (10), under the agents' address's (40)
    assert _burst("127.0.0.12", edge.port, 25) < 25
    assert _burst("127.0.0.11", edge.port, 25) == 25
    assert [(b.kind, b.source) for b in current_bans(edge.config.rpc_port)] == [
        ("flood", "127.0.0.12")
    ]
    # but an agents' address that floods is banned like any other
    assert _burst("127.0.0.11", edge.port, 60) < 60
    assert {(b.kind, b.source) for b in current_bans(edge.config.rpc_port)} == {
        ("flood", "127.0.0.11"),
        ("flood", "127.0.0.12"),
    }

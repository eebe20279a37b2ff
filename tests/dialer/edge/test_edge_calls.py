"""Agents register and call through a real Kamailio edge, over UDP, TCP and TLS."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dialer.edge import trust
from dialer.edge.registrations import live_contacts
from recording.db.engine import make_engine, session_factory
from tests.dialer.edge.conftest import AGENTS, StartEdge
from tests.dialer.edge.sipclient import Agent
from tests.helpers import run_sipp


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_agent_registers_and_calls_through_the_edge(
    start_edge: StartEdge, transport: str
) -> None:
    edge = start_edge(workers=1)
    target = f"127.0.0.1:{edge.port}"
    login = ("-s", "alice", "-au", "alice", "-ap", AGENTS["alice"], "-t", transport)
    registered = run_sipp("edge_agent_register.xml", target, *login, timeout=15)
    assert registered.returncode == 0, registered.stderr[-2000:]
    called = run_sipp("edge_agent_call.xml", target, *login, timeout=15)
    assert called.returncode == 0, called.stderr[-2000:] + edge.log()[-3000:]
    invite = edge.workers[0].invites()[-1]
    # the worker sees who the edge authenticated, not what the client claimed
    assert "X-Dialguard-Agent: alice" in invite
    assert "forged" not in invite
    mark = next(line for line in invite.splitlines() if line.startswith("X-Dialguard-Edge:"))
    call_id = next(line for line in invite.splitlines() if line.startswith("Call-ID:"))
    ts = int(mark.split(":", 1)[1].strip().split(";")[0])
    assert trust.verify(
        edge.secret, mark.split(":", 1)[1].strip(), call_id.split(":", 1)[1].strip(), "alice", ts
    )
    assert f"X-Dialguard-Transport: {'udp' if transport == 'u1' else 'tcp'}" in invite


def test_agent_registers_and_calls_over_tls(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1)
    agent = Agent("127.0.0.1", edge.config.tls_port, "bob", AGENTS["bob"], transport="tls")
    try:
        registered = agent.register()
        assert registered is not None and registered.status == 200
        answered = agent.call()
        assert answered is not None and answered.status == 200, edge.log()[-2000:]
    finally:
        agent.close()
    invite = edge.workers[0].invites()[-1]
    assert "X-Dialguard-Agent: bob" in invite
    assert "X-Dialguard-Transport: tls" in invite


def test_registrations_land_in_dialguards_database(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1)
    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])
    try:
        reply = agent.register()
        assert reply is not None and reply.status == 200
        local = agent.local
    finally:
        agent.close()
    engine = make_engine(edge.database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT username, contact FROM location WHERE username = 'alice'")
        ).all()
    engine.dispose()
    assert [(user, f"127.0.0.1:{local[1]}" in contact) for user, contact in rows] == [
        ("alice", True)
    ]
    # Kamailio's SQLite datetimes (Julian days) read as UTC: about 300 s from now
    with session_factory(make_engine(edge.database_url))() as session:
        (found,) = live_contacts(session, "alice", datetime.now(UTC))
        assert found.expires is not None
        assert 290 < (found.expires - datetime.now(UTC)).total_seconds() <= 300
        assert live_contacts(session, "alice", datetime.now(UTC) + timedelta(seconds=301)) == []


def _worker_invite(
    edge_port: int, sock: socket.socket, agent: str, mark: str, call_id: str
) -> bytes:
    host, port = sock.getsockname()
    return (
        f"INVITE sip:{agent}@dialguard SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:13800138000@dialguard>;tag=w{call_id}\r\nTo: <sip:{agent}@dialguard>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:worker@{host}:{port}>\r\n"
        f"X-Dialguard-Edge: {mark}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_worker_rings_a_registered_agent_through_the_edge(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1)
    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])
    worker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    worker.bind(("127.0.0.1", 0))
    worker.settimeout(3)
    try:
        assert (reply := agent.register()) is not None and reply.status == 200
        now = int(time.time())
        forged = _worker_invite(
            edge.port, worker, "alice", trust.mark("0" * 64, now, "c2c-1", "alice"), "c2c-1"
        )
        worker.sendto(forged, ("127.0.0.1", edge.port))
        assert worker.recv(65535).startswith(b"SIP/2.0 403")
        good = _worker_invite(
            edge.port, worker, "alice", trust.mark(edge.secret, now, "c2c-2", "alice"), "c2c-2"
        )
        worker.sendto(good, ("127.0.0.1", edge.port))
        assert agent._sock is not None
        ringing = agent._sock.recv(65535)
        assert ringing.startswith(b"INVITE sip:alice@127.0.0.1:")
        assert b"Call-ID: c2c-2" in ringing and b"X-Dialguard-" not in ringing
    finally:
        worker.close()
        agent.close()

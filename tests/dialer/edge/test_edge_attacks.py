"""What an attacker meets at the edge: no account enumeration, bans per source and account,
flood bans that lift, and a worker set that drops a dead worker at once."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from dialer.edge.bans import Ban, current_bans, rpc
from dialer.edge.config import EdgeBans
from tests.dialer.edge.conftest import AGENTS, StartEdge, wait_for
from tests.dialer.edge.sipclient import Agent, Reply

_PER_REQUEST = ("via", "from", "to", "call-id", "cseq", "www-authenticate", "content-length")


def _shape(reply: Reply) -> list[str]:
    """A reply without what differs per request by design (tags, Call-ID, nonce)."""
    head = reply.raw.split(b"\r\n\r\n", 1)[0].decode()
    return [
        line
        for line in head.split("\r\n")
        if line.split(":", 1)[0].strip().lower() not in _PER_REQUEST
    ]


def test_wrong_password_and_unknown_account_get_identical_answers(
    start_edge: StartEdge,
) -> None:
    edge = start_edge(workers=1)
    answers = []
    for user, password in (("alice", "not-her-password"), ("mallory", "anything")):
        agent = Agent("127.0.0.1", edge.port, user, password)
        try:
            reply = agent.register()
        finally:
            agent.close()
        assert reply is not None
        answers.append(reply)
    assert [a.status for a in answers] == [403, 403]
    assert _shape(answers[0]) == _shape(answers[1])
    log = edge.log()
    assert "reason=wrong password" in log  # the operator's log says why; the caller never knows
    assert "reason=unknown or disabled account" in log


def test_a_guesser_is_banned_for_that_account_not_the_agents_on_its_address(
    start_edge: StartEdge,
) -> None:
    edge = start_edge(workers=1, bans=EdgeBans(login_failures=3))
    for attempt in range(6):
        guesser = Agent("127.0.0.1", edge.port, "bob", f"guess-{attempt}", timeout=1.0)
        try:
            reply = guesser.register()
        finally:
            guesser.close()
        # three wrong answers, then silence: the right password cannot be found any more
        assert (reply.status if reply else None) == (403 if attempt < 3 else None)
    right = Agent("127.0.0.1", edge.port, "bob", AGENTS["bob"], timeout=1.0)
    try:
        assert right.register() is None  # banned pair: even the right password gets nothing
    finally:
        right.close()
    # alice, on the same address, logs in as ever; so does bob from his own address
    for agent in (
        Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"]),
        Agent("127.0.0.1", edge.port, "bob", AGENTS["bob"], source="127.0.0.7"),
    ):
        try:
            reply = agent.register()
            assert reply is not None and reply.status == 200
        finally:
            agent.close()
    assert current_bans(edge.config.rpc_port) == [Ban("login", "127.0.0.1", "bob")]
    assert edge.log().count("edge: ban login source=127.0.0.1 account=bob") == 1


def test_a_flooding_source_is_banned_then_unbanned(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1, bans=EdgeBans(flood_requests=10, flood_s=5))
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.bind(("127.0.0.9", 0))
    flooder.settimeout(0.3)
    port = flooder.getsockname()[1]

    def options(n: int) -> bytes:
        return (
            f"OPTIONS sip:127.0.0.1:{edge.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.9:{port};branch=z9hG4bKflood{n}\r\n"
            f"From: <sip:f@127.0.0.9>;tag={n}\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def answered(n: int) -> bool:
        flooder.sendto(options(n), ("127.0.0.1", edge.port))
        try:
            while True:
                if b"flood-%d" % n in flooder.recv(65535):
                    return True
        except TimeoutError:
            return False

    try:
        assert answered(0)
        for n in range(1, 200):
            flooder.sendto(options(n), ("127.0.0.1", edge.port))
        time.sleep(0.3)
        while True:  # drain what was answered before the ban
            try:
                flooder.recv(65535)
            except TimeoutError:
                break
        assert not answered(1000)
        assert [b.kind for b in current_bans(edge.config.rpc_port)] == ["flood"]
        agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])  # others are served
        try:
            reply = agent.register()
            assert reply is not None and reply.status == 200
        finally:
            agent.close()
        time.sleep(4.5)
        assert wait_for(lambda: answered(2000 + int(time.monotonic() * 10) % 1000), 8, 0.5)
    finally:
        flooder.close()
    assert wait_for(lambda: "edge: unban flood source=127.0.0.9" in edge.log(), 3)
    log = edge.log()
    assert log.count("edge: ban flood source=127.0.0.9") == 1
    assert log.count("edge: unban flood source=127.0.0.9") == 1


def _worker_flags(edge_rpc: int) -> dict[int, str]:
    """Each worker port's dispatcher state: AP active (probed), IP inactive."""
    listing = rpc(edge_rpc, "dispatcher.list", [])
    targets = listing["RECORDS"][0]["SET"]["TARGETS"]
    return {int(t["DEST"]["URI"].split(":")[2].split(";")[0]): t["DEST"]["FLAGS"] for t in targets}


def test_a_dead_worker_leaves_the_set_within_2_s_and_rejoins(start_edge: StartEdge) -> None:
    edge = start_edge(workers=2)
    dead, alive = edge.workers
    assert wait_for(lambda: set(_worker_flags(edge.config.rpc_port).values()) == {"AP"}, 5)
    dead.stop()
    stopped = time.monotonic()
    assert wait_for(lambda: _worker_flags(edge.config.rpc_port)[dead.port] != "AP", 3, 0.05)
    assert time.monotonic() - stopped <= 2.0
    for _ in range(3):  # calls go to the live worker, without a wait for the dead one
        agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], timeout=2.0)
        try:
            began = time.monotonic()
            reply = agent.call()
            assert reply is not None and reply.status == 200
            assert time.monotonic() - began < 1.5
        finally:
            agent.close()
    dead.start()
    assert wait_for(lambda: _worker_flags(edge.config.rpc_port)[dead.port] == "AP", 3)
    assert len(alive.invites()) == 3


def test_a_busy_worker_passes_the_call_to_the_next(start_edge: StartEdge) -> None:
    edge = start_edge(uas_scenarios=["edge_worker_busy.xml", "edge_worker_uas.xml"])
    for _ in range(2):  # round robin starts at either: both calls must be answered
        agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])
        try:
            reply = agent.call()
            assert reply is not None and reply.status == 200
        finally:
            agent.close()
    assert len(edge.workers[1].invites()) == 2


def test_the_rpc_answers_only_reading_calls(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1)
    assert rpc(edge.config.rpc_port, "core.uptime", [])["uptime"] >= 0
    for method in ("dispatcher.set_state", "htable.delete", "core.shmmem"):
        answer = httpx.post(
            f"http://127.0.0.1:{edge.config.rpc_port}/RPC",
            json={"jsonrpc": "2.0", "method": method, "params": [], "id": 1},
        )
        assert answer.status_code == 403
    # the SIP port serves no RPC
    answer = httpx.post(
        f"http://127.0.0.1:{edge.port}/RPC", json={"method": "core.uptime"}, timeout=2
    )
    assert answer.status_code == 403


def test_the_edge_relays_in_dialog_requests_to_workers_only(start_edge: StartEdge) -> None:
    """A forged Route set (the edge, then a third party) does not make an open relay."""
    edge = start_edge(workers=1)
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.1", 0))
    victim.settimeout(1.0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.3", 0))
    sender.settimeout(2.0)
    try:
        port = victim.getsockname()[1]
        me = sender.getsockname()[1]
        bye = (
            f"BYE sip:x@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.3:{me};branch=z9hG4bKrelay1\r\n"
            f"Route: <sip:127.0.0.1:{edge.port};lr>\r\n"
            f"From: <sip:a@dialguard>;tag=a\r\nTo: <sip:x@dialguard>;tag=b\r\n"
            "Call-ID: relay-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        sender.sendto(bye, ("127.0.0.1", edge.port))
        assert sender.recv(65535).startswith(b"SIP/2.0 403")
        with pytest.raises(TimeoutError):
            victim.recv(65535)
    finally:
        victim.close()
        sender.close()


def test_an_agent_elsewhere_ends_its_call_through_the_edge(start_edge: StartEdge) -> None:
    """From an address that is no worker's, the ACK and BYE still reach the worker."""
    edge = start_edge(workers=1)
    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"], source="127.0.0.4")
    try:
        reply = agent.call()  # raises unless the BYE is answered 200
        assert reply is not None and reply.status == 200
    finally:
        agent.close()

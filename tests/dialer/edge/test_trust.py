"""The edge's mark on the INVITEs it forwards: what the worker accepts, and that real
Kamailio computes the same value from the same inputs (the contract the edge's
generated config is built to)."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.edge.trust import EdgeTrust, mark, verify
from tests.helpers import free_port

SECRET = "6f1c0a9e5b7d2c4e8a3f1b0d9c7e5a3b"
NOW = 1_796_000_000
CALL_ID = "a84b4c76e66710@pc33.example"
KAMAILIO = Path("/usr/sbin/kamailio")
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

GOOD = mark(SECRET, NOW, CALL_ID, "agent1")


@pytest.mark.parametrize(
    ("header", "call_id", "agent", "now", "accepted"),
    [
        (GOOD, CALL_ID, "agent1", NOW, True),
        (GOOD, CALL_ID, "agent1", NOW + 32, True),  # the edge's retransmissions and failover
        (GOOD, CALL_ID, "agent1", NOW - 5, True),  # the edge's clock a little ahead
        (f"  {GOOD} ", CALL_ID, "agent1", NOW, True),
        (mark("another-secret", NOW, CALL_ID, "agent1"), CALL_ID, "agent1", NOW, False),
        (GOOD, CALL_ID, "agent1", NOW + 33, False),  # too old: a captured mark replayed
        (mark(SECRET, NOW - 3600, CALL_ID, "agent1"), CALL_ID, "agent1", NOW, False),
        (mark(SECRET, NOW + 3600, CALL_ID, "agent1"), CALL_ID, "agent1", NOW, False),
        (GOOD, "other-call@pc33.example", "agent1", NOW, False),
        (GOOD, CALL_ID, "agent2", NOW, False),  # one agent's mark does not carry another
        (GOOD, CALL_ID, "", NOW, False),
        (GOOD, CALL_ID, None, NOW, False),
        (GOOD.upper(), CALL_ID, "agent1", NOW, False),
        (GOOD.replace(";", ","), CALL_ID, "agent1", NOW, False),
        (GOOD[:-1], CALL_ID, "agent1", NOW, False),
        (f"{NOW}", CALL_ID, "agent1", NOW, False),
        (f";{GOOD.split(';')[1]}", CALL_ID, "agent1", NOW, False),
        ("garbage", CALL_ID, "agent1", NOW, False),
        ("", CALL_ID, "agent1", NOW, False),
        (None, CALL_ID, "agent1", NOW, False),
        (GOOD, "", "agent1", NOW, False),
    ],
)
def test_worker_accepts_only_the_edges_fresh_mark_for_this_call_and_agent(
    header: str | None, call_id: str, agent: str | None, now: int, accepted: bool
) -> None:
    assert verify(SECRET, header, call_id, agent, now) is accepted


def test_mark_is_a_timestamp_and_lowercase_hex_sha256() -> None:
    ts, _, digest = GOOD.partition(";")
    assert ts == str(NOW)
    assert len(digest) == 64 and digest == digest.lower()
    assert int(digest, 16) >= 0


def test_edge_trust_refuses_an_empty_secret_or_no_address() -> None:
    with pytest.raises(ValueError, match="secret"):
        EdgeTrust("", frozenset({"127.0.0.1"}), "127.0.0.1:5060")
    with pytest.raises(ValueError, match="no edge address"):
        EdgeTrust(SECRET, frozenset(), "127.0.0.1:5060")
    assert SECRET not in repr(EdgeTrust(SECRET, frozenset({"127.0.0.1"}), "127.0.0.1:5060"))


# --- the contract, with Kamailio itself --------------------------------------------------

_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "xlog.so"

request_route {{
    # As the edge marks an INVITE it forwards to a worker (dialer/edge/config.py).
    $var(secret) = "{secret}";
    $var(ts) = $Ts;
    $var(d) = $var(secret) + "|" + $var(ts) + "|" + $ci + "|" + $hdr(X-Agent) + "|" + $var(secret);
    append_to_reply("X-Dialguard-Edge: $var(ts);$(var(d){{s.sha256}})\\r\\n");
    sl_send_reply("200", "OK");
}}
"""


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not KAMAILIO.exists() or not (MODULES / "pv.so").exists():
        pytest.skip("kamailio is not installed (make deps)")
    port = free_port(socket.SOCK_DGRAM)
    cfg = tmp_path_factory.mktemp("kamailio") / "mark.cfg"
    cfg.write_text(_CFG.format(port=port, modules=MODULES, secret=SECRET))
    runtime = cfg.parent / "run"
    runtime.mkdir()
    proc = subprocess.Popen(
        [str(KAMAILIO), "-f", str(cfg), "-DD", "-E", "-m", "16", "-M", "4", "-Y", str(runtime)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ask(port: int, call_id: str, agent: str, limit_s: float = 10.0) -> str:
    """Send OPTIONS until Kamailio answers; its X-Dialguard-Edge value."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.3)
        local = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:edge@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:test@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:edge@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"X-Agent: {agent}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            sock.sendto(request, ("127.0.0.1", port))
            try:
                answer = sock.recv(65535).decode()
            except TimeoutError:
                continue
            for line in answer.split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "x-dialguard-edge":
                    return value.strip()
            raise AssertionError(f"no mark in Kamailio's answer: {answer!r}")
    raise AssertionError("Kamailio did not answer")


@pytest.mark.parametrize(
    ("call_id", "agent"),
    [(CALL_ID, "agent1"), ("3848276298220188511@192.0.2.4", "zhang.wei-02")],
)
def test_kamailio_computes_the_mark_the_worker_checks(
    kamailio: int, call_id: str, agent: str
) -> None:
    before = int(time.time())
    header = _ask(kamailio, call_id, agent)
    ts = int(header.partition(";")[0])
    assert before - 1 <= ts <= time.time() + 1
    assert header == mark(SECRET, ts, call_id, agent)
    assert verify(SECRET, header, call_id, agent, time.time())
    assert not verify(SECRET, header, call_id, "someone-else", time.time())

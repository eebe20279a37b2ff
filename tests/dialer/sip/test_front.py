"""The SIP front: digest at the door, a 302 to the least loaded worker, 503 when all are full;
then SIPp agents following the redirect to a pool of real dialer workers."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Sealer, upsert, validate_row
from dialer.models import CallAttempt, CallRequest
from dialer.process import run_front, run_worker
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm, Credential, FailureThrottle, expected_response
from dialer.sip.front import Front, FrontConfig, WorkerTable
from dialer.sip.redirect_token import check, issue, token_in
from dialer.softphones import set_sip_password
from recording.db.engine import make_engine, session_factory
from recording.keys import FileKeyRing
from recording.models import Recording
from tests.apps import make_app
from tests.dialer.running import Parts, office_hours
from tests.dialer.sip.test_b2bua import NUMBER, PCAP, Carrier, _wait_bound
from tests.factories import T0
from tests.helpers import DATA, free_port, run_sipp, sip_bytes, sip_message

SECRET = b"s" * 32
URI = f"sip:{NUMBER}@127.0.0.1:5060"


def _authorization(auth: str | None) -> str:
    """The Authorization header line a template's ``$authorization`` stands for, if any."""
    return f"Authorization: {auth}\r\n" if auth else ""


def _invite(auth: str | None = None, call_id: str = "c1@x", branch: str = "z9hG4bK-1") -> str:
    return sip_message(
        "agent_invite.tmpl",
        uri=URI,
        branch=branch,
        call_id=call_id,
        authorization=_authorization(auth),
    )


def _answer(front: Front, text: str, source: str = "127.0.0.1:5999") -> tuple[int, str]:
    data = front.respond(text, source, "udp")
    assert data is not None
    raw = data.decode()
    return int(raw.split(" ", 2)[1]), raw


def _authorize(challenge_text: str, password: str = "secret") -> str:
    nonce = re.search(r'nonce="([^"]+)"', challenge_text)
    assert nonce is not None
    cred = Credential.from_password("agent1", "dialguard", password, (Algorithm.MD5,))
    response = expected_response(
        cred.ha1[Algorithm.MD5],
        "INVITE",
        URI,
        nonce.group(1),
        Algorithm.MD5,
        "auth",
        "00000001",
        "c0",
    )
    return (
        f'Digest username="agent1", realm="dialguard", nonce="{nonce.group(1)}", uri="{URI}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0"'
    )


def _front(ports: list[int], legs: list[int]) -> Front:
    def creds(user: str) -> Credential | None:
        if user != "agent1":
            return None
        return Credential.from_password("agent1", "dialguard", "secret", (Algorithm.MD5,))

    throttle = FailureThrottle(time.monotonic, max_failures=2, window_s=60, cooloff_s=60)
    config = FrontConfig("127.0.0.1", 5060, SECRET, algorithms=(Algorithm.MD5,))
    return Front(config, WorkerTable(ports, legs), creds, throttle)


def test_digest_then_redirect_to_the_least_loaded_worker() -> None:
    front = _front([7001, 7002, 0], [2, 0, 0])  # the third worker is not up yet
    code, challenge = _answer(front, _invite())
    assert code == 401 and 'WWW-Authenticate: Digest realm="dialguard"' in challenge
    invite = _invite(_authorize(challenge), branch="z9hG4bK-2")
    code, redirect = _answer(front, invite)
    assert code == 302
    contact = re.search(r"Contact: <([^>]+)>", redirect)
    assert contact is not None and "@127.0.0.1:7002;dgt=" in contact.group(1)
    token = token_in(contact.group(1))
    assert token is not None
    assert check(SECRET, token, NUMBER, "c1@x", time.time()) == "agent1"
    # the same request again (a UDP retransmission) gets the same answer, not a new pick
    assert front.respond(invite, "127.0.0.1:5999", "udp") == redirect.encode()
    assert ";tag=" in next(line for line in redirect.splitlines() if line.startswith("To:"))


def test_full_pool_answers_503_with_retry_after() -> None:
    front = _front([7001, 7002], [4, 3])  # 2 calls each: full
    _, challenge = _answer(front, _invite())
    code, busy = _answer(front, _invite(_authorize(challenge), branch="z9hG4bK-2"))
    assert code == 503 and "Retry-After: 5" in busy


def test_redirects_count_against_a_worker_until_it_reports() -> None:
    table = WorkerTable([7001, 7002], [0, 0])
    now = 100.0
    picks = [table.pick(now) for _ in range(4)]
    assert sorted(p for p in picks if p is not None) == [0, 0, 1, 1]
    assert table.pick(now) is None and table.free_calls(now) == 0
    assert table.pick(now + 5) is not None  # reservations lapse once workers would have reported


def test_wrong_password_is_403_and_throttled() -> None:
    front = _front([7001], [0])
    source = "10.0.0.9:5060"
    for branch in ("b1", "b2"):
        _, challenge = _answer(front, _invite(branch=branch + "c"), source)
        code, _ = _answer(front, _invite(_authorize(challenge, "wrong"), branch=branch), source)
        assert code == 403
    _, challenge = _answer(front, _invite(branch="b3c"), "127.0.0.1:5999")
    auth = _authorize(challenge)
    code, text = _answer(front, _invite(auth, branch="b3"), source)
    assert code == 403 and "Too Many Failed Logins" in text  # locked out, right password or not
    assert _answer(front, _invite(auth, branch="b4"), "127.0.0.1:5999")[0] == 302


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("options_request.txt", 200),
        ("register_minimal.txt", 405),
        ("invite_without_via.txt", 400),  # no Via, no Call-ID
        ("cancel_unknown_call.txt", 481),
    ],
    ids=["options", "register", "invite-without-via", "cancel"],
)
def test_other_requests(fixture: str, status: int) -> None:
    assert _answer(_front([7001], [0]), sip_message(fixture))[0] == status


@pytest.mark.parametrize(
    "fixture", ["garbage.bin", "truncated_status_line.txt", "options_200_pjsua2.txt"]
)
def test_unreadable_messages_and_responses_get_no_answer(fixture: str) -> None:
    text = sip_bytes(fixture).decode("utf-8", "replace")
    assert _front([7001], [0]).respond(text, "127.0.0.1:5999", "udp") in (None,)


def test_tokens_are_bound_to_call_number_and_time() -> None:
    token = issue(SECRET, "agent1", NUMBER, "c1", 1000.0)
    assert check(SECRET, token, NUMBER, "c1", 1010.0) == "agent1"
    assert check(SECRET, token, NUMBER, "c2", 1010.0) is None  # another call
    assert check(SECRET, token, "13900139000", "c1", 1010.0) is None  # another number
    assert check(SECRET, token, NUMBER, "c1", 1031.0) is None  # expired
    assert check(b"x" * 32, token, NUMBER, "c1", 1010.0) is None  # forged
    assert check(SECRET, "agent1~99999999999~" + "0" * 32, NUMBER, "c1", 1010.0) is None
    assert token_in(f"sip:1@h:5;dgt={token};transport=tcp") == token
    assert token_in("sip:1@h:5") is None


# --- a real pool ----------------------------------------------------------------------------


def _serve_worker(parts: Parts, config: B2buaConfig, index: int, ports: Any, legs: Any) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_worker(config, parts.site(), stop, index, ports, legs)


def _serve_front(database_url: str, config: FrontConfig, ports: Any, legs: Any) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_front(config, session_factory(make_engine(database_url)), ports, legs, stop)


@contextlib.contextmanager
def pool(parts: Parts, workers: int, trunk_port: int) -> Iterator[tuple[int, Any]]:
    ctx = multiprocessing.get_context("spawn")
    ports, legs = ctx.Array("i", workers, lock=False), ctx.Array("i", workers, lock=False)
    secret = os.urandom(32)
    front_port = free_port(socket.SOCK_DGRAM)
    worker_config = B2buaConfig(
        host="127.0.0.1",
        port=0,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=parts.calls,
        secret=secret,
        front_secret=secret,
    )
    front_config = FrontConfig("127.0.0.1", front_port, secret, algorithms=(Algorithm.MD5,))
    processes = [
        ctx.Process(target=_serve_worker, args=(parts, worker_config, i, ports, legs))
        for i in range(workers)
    ]
    processes.append(
        ctx.Process(target=_serve_front, args=(parts.database_url, front_config, ports, legs))
    )
    for process in processes:
        process.start()
    try:
        deadline = time.monotonic() + 90
        while not all(ports[i] for i in range(workers)):
            assert time.monotonic() < deadline, "workers did not come up"
            assert all(p.is_alive() for p in processes), "a pool process died at start"
            time.sleep(0.2)
        yield front_port, ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(15)
            if process.is_alive():
                process.kill()


def _carrier(port: int, calls: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(DATA / "sipp" / "b2b_carrier_answer.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            str(calls),
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_bound(port, proc)
    return proc


def agents(
    front_port: int, calls: int, log: Path, pause_ms: int = 3000
) -> subprocess.CompletedProcess[str]:
    """`calls` agents calling at once through the front, each following its redirect."""
    return subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{front_port}",
            "-sf",
            str(DATA / "sipp" / "front_agent_talk.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(socket.SOCK_DGRAM)),
            "-s",
            NUMBER,
            "-au",
            "agent1",
            "-ap",
            "secret",
            "-auth_uri",
            f"{NUMBER}@127.0.0.1:{front_port}",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            str(calls),
            "-l",
            str(calls),
            "-r",
            str(calls),
            "-d",
            str(pause_ms),
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_logs",
            "-log_file",
            str(log),
            "-trace_err",
            "-error_file",
            str(log.with_suffix(".err")),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pool_bridges_calls_on_every_worker(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    parts = Parts(database_url, tmp_path / "data")
    with session_factory(engine)() as session:
        set_sip_password(session, "agent1", "dialguard", "secret", office_hours())
    trunk_port = free_port(socket.SOCK_DGRAM)
    with pool(parts, 2, trunk_port) as (front_port, ports):
        carrier = _carrier(trunk_port, 3)
        log = tmp_path / "agents.log"
        result = agents(front_port, 3, log)
        errors = log.with_suffix(".err")
        assert result.returncode == 0, errors.read_text()[-3000:] if errors.exists() else ""
        out, _ = carrier.communicate(timeout=60)
        assert carrier.returncode == 0, out[-3000:]
        used = set(re.findall(r"redirected to port (\d+)", log.read_text()))
        assert used == {str(ports[0]), str(ports[1])}, "calls were not spread over the pool"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_factory(engine)() as session:
                booked = list(session.scalars(select(CallAttempt)))
                stored = list(session.scalars(select(Recording)))
            if len(booked) == 3 and len(stored) == 3:
                break
            time.sleep(0.3)
    assert [a.answered for a in booked] == [True, True, True]
    assert {r.agent for r in stored} == {"agent1"} and all(r.channels == 2 for r in stored)


def _answering_agent(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(DATA / "sipp" / "agent_rung.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_bound(port, proc)
    return proc


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_click_to_call_rings_the_agent_then_dials(
    engine: Engine, database_url: str, services: Services, tmp_path: Path
) -> None:
    parts = Parts(database_url, tmp_path / "data")
    api_services = dataclasses.replace(services, keys=FileKeyRing(parts.data / "keys" / "kek.json"))
    site = parts.site()
    debtor = validate_row(
        {
            "client": "bank-a",
            "external_id": "D-7",
            "name": "王小明",
            "stage": "early",
            "timezone": "Asia/Shanghai",
            "numbers": f"debtor:{NUMBER}",
        },
        "CN",
    )
    assert isinstance(debtor, DebtorIn)
    with session_factory(engine)() as session:
        upsert(session, [debtor], Sealer(site.keys, site.number_secret), T0)
        set_sip_password(session, "agent1", "dialguard", "secret", office_hours())
        tokens = {}
        for name, role in (("agent1", "agent"), ("agent2", "agent")):
            user = create_user(session, name, role, "a long passphrase", T0)
            tokens[name] = {"Authorization": f"Bearer {issue_token(session, user, 't', T0)}"}
    api = TestClient(make_app(api_services, engine))
    body = {"agent": "agent1", "number": NUMBER, "debtor_id": "D-7"}
    trunk_port = free_port(socket.SOCK_DGRAM)
    with pool(parts, 1, trunk_port) as (front_port, _):
        unregistered = api.post("/api/v1/calls", json=body, headers=tokens["agent1"])
        assert unregistered.status_code == 409 and "not registered" in unregistered.json()["detail"]
        phone_port = free_port(socket.SOCK_DGRAM)
        phone = _answering_agent(phone_port)
        registered = run_sipp(
            "agent_register.xml",
            f"127.0.0.1:{front_port}",
            "-au",
            "agent1",
            "-ap",
            "secret",
            "-auth_uri",
            f"127.0.0.1:{front_port}",
            "-key",
            "contact_port",
            str(phone_port),
        )
        assert registered.returncode == 0, registered.stdout[-2000:]
        assert api.post("/api/v1/calls", json=body, headers=tokens["agent2"]).status_code == 403
        scenario = DATA / "sipp" / "b2b_carrier_hangup.xml"
        carrier = Carrier(scenario, trunk_port, pause_ms=3000)
        queued = api.post("/api/v1/calls", json=body, headers=tokens["agent1"])
        assert queued.status_code == 202, queued.text
        assert queued.json()["number"] == "+86138****8000"
        url = f"/api/v1/calls/{queued.json()['id']}"
        deadline = time.monotonic() + 40
        while (state := api.get(url, headers=tokens["agent1"]).json())["status"] in (
            "queued",
            "claimed",
        ):
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        out, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, out[-2000:]
        assert carrier.result()[0] == 0
    assert (state["status"], state["sip_status"]) == ("done", 200), state
    with session_factory(engine)() as session:
        attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == state["call_id"]))
        assert attempt is not None and attempt.answered and attempt.recording_id
        assert attempt.debtor_id == "D-7"  # booked for the debtor: its caps count it
        recording = session.get(Recording, attempt.recording_id)
        assert recording is not None
        assert (recording.debtor_id, recording.client_id) == ("D-7", "bank-a")
        stored = session.get(CallRequest, queued.json()["id"])
        assert stored is not None and NUMBER not in repr(stored.number_sealed)


def _register(auth: str | None = None, contact: str = "<sip:agent1@127.0.0.1:6001>") -> str:
    return sip_message(
        "agent_register.tmpl",
        branch="z9hG4bK-r2" if auth else "z9hG4bK-r1",
        authorization=_authorization(auth),
        contact=contact,
    )


def test_register_keeps_where_the_softphone_is() -> None:
    seen: list[tuple[str, str | None, int]] = []
    front = _front([7001], [0])
    front.register = lambda user, contact, seconds: seen.append((user, contact, seconds))
    code, challenge = _answer(front, _register())
    assert code == 401 and seen == []
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert nonce is not None
    uri = "sip:127.0.0.1:5060"
    cred = Credential.from_password("agent1", "dialguard", "secret", (Algorithm.MD5,))
    response = expected_response(
        cred.ha1[Algorithm.MD5], "REGISTER", uri, nonce.group(1), Algorithm.MD5, "auth", "1", "c"
    )
    auth = (
        f'Digest username="agent1", realm="dialguard", nonce="{nonce.group(1)}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc=1, cnonce="c"'
    )
    code, ok = _answer(front, _register(auth))
    assert code == 200 and "expires=3600" in ok  # capped at an hour
    assert seen == [("agent1", "sip:agent1@127.0.0.1:6001", 3600)]
    code, _ = _answer(front, _register(auth, contact="*").replace("r2", "r3"))
    assert code == 200 and seen[-1] == ("agent1", None, 0)


def test_a_stream_that_cannot_be_framed_or_a_vanished_peer_does_not_stop_the_front() -> None:
    """One TCP message with a negative Content-Length used to spin the front forever, and a
    peer that hung up before its message was read used to kill it: every agent's next call
    failed. Now that connection goes and everyone else is served."""
    from dialer.errors import SipUnreachable
    from dialer.sip.probe import sip_ping

    port = free_port(socket.SOCK_DGRAM)
    throttle = FailureThrottle(time.monotonic, max_failures=2, window_s=60, cooloff_s=60)
    config = FrontConfig("127.0.0.1", port, SECRET, algorithms=(Algorithm.MD5,))
    front = Front(config, WorkerTable([7001], [0]), lambda _user: None, throttle)
    stop = threading.Event()
    serving = threading.Thread(target=front.serve, args=(stop,), daemon=True)
    serving.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # until it listens
            with contextlib.suppress(OSError, SipUnreachable):
                sip_ping("127.0.0.1", port, timeout=0.5)
                break
            assert time.monotonic() < deadline, "the front never answered"
        with socket.create_connection(("127.0.0.1", port), timeout=2) as hostile:
            hostile.sendall(sip_bytes("options_negative_length.txt"))
            with contextlib.suppress(ConnectionResetError):
                assert hostile.recv(4096) == b"", "the unframeable stream is closed, unanswered"
        linger_then_reset = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
        for _ in range(20):  # peers that send a whole message and reset at once
            peer = socket.create_connection(("127.0.0.1", port), timeout=2)
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_then_reset)
            peer.sendall(sip_bytes("options_request.txt"))
            peer.close()
        assert sip_ping("127.0.0.1", port, timeout=2).status == 200
        assert serving.is_alive()
    finally:
        stop.set()
        serving.join(5)

"""A host's dialer workers as `dialguard up` runs them behind the Kamailio edge, with SIPp
playing the edge: each worker on its fixed port (base + index), calls booked and stored,
and a click-to-call that rings the agent through the edge after the API found the agent's
softphone in Kamailio's `location` table."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.web.auth import issue_token
from api.web.services import Services
from dialer.debtors import DebtorIn, Sealer, upsert, validate_row
from dialer.edge.dispatch import worker_port
from dialer.edge.trust import EdgeTrust, mark
from dialer.models import CallAttempt, CallRequest
from dialer.process import run_worker
from dialer.sip.config import B2buaConfig
from recording.db.engine import session_factory
from recording.keys import FileKeyRing
from recording.models import Recording
from tests.apps import make_app
from tests.dialer.running import Parts
from tests.dialer.sip.test_b2bua import NUMBER, PCAP, Carrier, _wait_bound
from tests.factories import T0
from tests.helpers import DATA, free_port, sipp_server

SECRET = secrets.token_hex(16)

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


def _port_base(workers: int) -> int:
    """A base whose `workers` ports are all free for UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        base = free_port(socket.SOCK_DGRAM)
        taken = False
        for port in range(base, base + workers):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as probe:
                    try:
                        probe.bind(("127.0.0.1", port))
                    except OSError:
                        taken = True
        if not taken:
            return base
    raise AssertionError("no run of free ports")


def _serve_worker(
    parts: Parts, config: B2buaConfig, index: int, ports: Any, legs: Any, base: int
) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_worker(config, parts.site(), stop, index, ports, legs, port_base=base)


@contextlib.contextmanager
def workers(parts: Parts, count: int, trunk_port: int, edge_port: int) -> Iterator[int]:
    """`count` workers of one host, as the supervisor starts them; yields the port base."""
    ctx = multiprocessing.get_context("spawn")
    ports, legs = ctx.Array("i", count, lock=False), ctx.Array("i", count, lock=False)
    base = _port_base(count)
    config = B2buaConfig(
        host="127.0.0.1",
        port=0,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=parts.calls,
        secret=secrets.token_bytes(32),
        edge=EdgeTrust(SECRET, frozenset({"127.0.0.1"}), f"127.0.0.1:{edge_port}"),
    )
    processes = [
        ctx.Process(target=_serve_worker, args=(parts, config, i, ports, legs, base))
        for i in range(count)
    ]
    for process in processes:
        process.start()
    try:
        deadline = time.monotonic() + 90
        while not all(ports[i] for i in range(count)):
            assert time.monotonic() < deadline, "workers did not come up"
            assert all(p.is_alive() for p in processes), "a worker died at start"
            time.sleep(0.2)
        assert list(ports) == [worker_port(base, i) for i in range(count)]
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(15)
            if process.is_alive():
                process.kill()


def edge_forwards(port: int, agent: str = "agent1", pause_ms: int = 2000) -> Any:
    """SIPp as the edge forwarding one authenticated agent's call to the worker on `port`."""
    cid = f"{secrets.token_hex(8)}@edge"
    return subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{port}",
            "-sf",
            str(DATA / "sipp" / "from_edge_talk.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(socket.SOCK_DGRAM)),
            "-s",
            NUMBER,
            "-cid_str",
            cid,
            "-key",
            "agent",
            agent,
            "-key",
            "mark",
            mark(SECRET, int(time.time()), cid, agent),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            "1",
            "-d",
            str(pause_ms),
            "-timeout",
            "40s",
            "-timeout_error",
            "-nostdin",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_worker_on_its_port_bridges_and_books_the_edges_calls(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    parts = Parts(database_url, tmp_path / "data")
    trunk_port = free_port(socket.SOCK_DGRAM)
    with workers(parts, 2, trunk_port, free_port(socket.SOCK_DGRAM)) as base:
        carrier = Carrier("b2b_carrier_answer.xml", trunk_port, timeout=60, extra=("-m", "2"))
        calls = [edge_forwards(worker_port(base, i)) for i in range(2)]
        for call in calls:
            out, _ = call.communicate(timeout=60)
            assert call.returncode == 0, out[-3000:]
        assert carrier.result()[0] == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_factory(engine)() as session:
                booked = list(session.scalars(select(CallAttempt)))
                stored = list(session.scalars(select(Recording)))
            if len(booked) == 2 and len(stored) == 2:
                break
            time.sleep(0.3)
    assert [a.answered for a in booked] == [True, True]
    assert {a.agent for a in booked} == {"agent1"}  # the edge's word for who called
    assert all(r.channels == 2 for r in stored)


def _edge_rings_the_phone(port: int) -> subprocess.Popen[str]:
    """SIPp on the edge's port, standing in for the edge and the softphone it finds."""
    proc = sipp_server("agent_rung.xml", port, "-m", "1", "-timeout", "60s", "-timeout_error")
    _wait_bound(port, proc)
    return proc


def _kamailio_registers(engine: Engine, username: str, contact: str, seconds: int) -> None:
    """A row as Kamailio's usrloc writes it: expiry naive, in the host's local time."""
    expires = (datetime.now().astimezone() + timedelta(seconds=seconds)).replace(tzinfo=None)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO location (ruid, username, contact, expires, user_agent) "
                "VALUES (:ruid, :username, :contact, :expires, 'baresip')"
            ),
            {
                "ruid": secrets.token_hex(8),
                "username": username,
                "contact": contact,
                "expires": expires.strftime("%Y-%m-%d %H:%M:%S"),
            },
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_click_to_call_rings_the_agent_through_the_edge_then_dials(
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
        user = create_user(session, "agent1", "agent", "a long passphrase", T0)
        token = {"Authorization": f"Bearer {issue_token(session, user, 't', T0)}"}
    api = TestClient(make_app(api_services, engine))
    body = {"agent": "agent1", "number": NUMBER, "debtor_id": "D-7"}
    trunk_port, edge_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    with workers(parts, 1, trunk_port, edge_port):
        _kamailio_registers(engine, "agent1", "sip:agent1@127.0.0.1:6001", -60)  # expired
        unregistered = api.post("/api/v1/calls", json=body, headers=token)
        assert unregistered.status_code == 409 and "not registered" in unregistered.json()["detail"]
        _kamailio_registers(engine, "agent1", "sip:agent1@127.0.0.1:6001", 3600)
        edge = _edge_rings_the_phone(edge_port)
        carrier = Carrier(DATA / "sipp" / "b2b_carrier_hangup.xml", trunk_port, pause_ms=3000)
        queued = api.post("/api/v1/calls", json=body, headers=token)
        assert queued.status_code == 202, queued.text
        url = f"/api/v1/calls/{queued.json()['id']}"
        deadline = time.monotonic() + 40
        while (state := api.get(url, headers=token).json())["status"] in ("queued", "claimed"):
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        out, _ = edge.communicate(timeout=30)
        assert edge.returncode == 0, out[-2000:]
        assert carrier.result()[0] == 0
    assert (state["status"], state["sip_status"]) == ("done", 200), state
    with session_factory(engine)() as session:
        attempt = session.scalar(select(CallAttempt).where(CallAttempt.call_id == state["call_id"]))
        assert attempt is not None and attempt.answered and attempt.recording_id
        assert attempt.debtor_id == "D-7"
        stored = session.get(CallRequest, queued.json()["id"])
        assert stored is not None and stored.status == "done"

"""Two dialer hosts behind one SIP edge, set up by configuration only (issue 13, Must 7).

Three `dialguard up`s on one machine stand in for three hosts: an edge on
127.0.0.1 (`DIALGUARD_ROLE=edge`, `DIALGUARD_DIALER_HOSTS=127.0.0.2,127.0.0.3`)
and two dialer hosts on 127.0.0.2 and 127.0.0.3 (`DIALGUARD_ROLE=dialer`),
sharing one PostgreSQL database, one SeaweedFS and the site's keys, dialing
out through one SIPp carrier. Agents call through the edge; the 200 OK's
Contact says which host bridged each call. Then one host is stopped (SIGTERM,
later its whole process tree SIGKILLed, as a host that loses power): new calls
go to the other host, and none placed more than 2 s after the stop fails.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from api.cli.supervisor import layout_problem, plan_dialer, role_children
from api.settings import Settings
from api.wiring import audit_key, edge_workers_list, edge_workers_per_host, key_ring
from dialer.edge.bans import rpc
from dialer.numbers import load_or_create_secret
from recording.embedded_s3 import EmbeddedS3
from tests.dialer.edge.conftest import wait_for
from tests.dialer.edge.sipclient import Agent
from tests.dialer.sip.test_b2bua import _wait_bound
from tests.e2e.test_up import Running, _number_in_daytime
from tests.helpers import dialguard, free_port, sipp_server

EDGE, HOST_A, HOST_B = "127.0.0.1", "127.0.0.2", "127.0.0.3"
AGENTS = {"agent1": "softphone-secret-71", "agent2": "softphone-secret-72"}
UP_WITHIN = 180.0  # three `dialguard up`s at once on a shared 2-core machine
#: The issue's bound: no call placed this long after a host stops may fail.
MOVED_WITHIN_S = 2.0


@dataclass
class Site:
    env: dict[str, str]  # what every host shares
    edge: Running
    hosts: dict[str, Running]
    tmp: Path
    rpc_port: int

    @property
    def sip(self) -> int:
        return int(self.env["DIALGUARD_SIP_PORT"])

    def start_host(self, address: str) -> Running:
        env = self.env | {
            "DIALGUARD_ROLE": "dialer",
            "DIALGUARD_SIP_HOST": address,
            "DIALGUARD_DATA_DIR": str(self.tmp / address),
        }
        log = self.tmp / f"{address}-{len(list(self.tmp.glob(address + '*.log')))}.log"
        self.hosts[address] = Running(env, log)
        return self.hosts[address]

    def destinations(self) -> dict[str, str]:
        """Each dialer host's worker (sip URI host) -> the edge's flags for it (AP: active)."""
        found: dict[str, str] = {}

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("URI"), str) and isinstance(node.get("FLAGS"), str):
                    host = re.sub(r"^sip:([^:;]+).*$", r"\1", node["URI"])
                    found[host] = node["FLAGS"]
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(rpc(self.rpc_port, "dispatcher.list", []))
        return found


def _up(running: Running, timeout: float) -> None:
    """Until `dialguard up` says its parts answer (a host without the console has no
    /healthz of its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = running.log.read_text(errors="replace")
        assert running.process.poll() is None, text[-3000:]
        if "Dialguard is up (" in text:
            return
        time.sleep(0.5)
    raise AssertionError(f"not up within {timeout} s\n{running.log.read_text()[-3000:]}")


def _shared_keys(tmp: Path, hosts: list[str]) -> None:
    """The site's keys made once and copied to every host, as docs/edge.md tells operators:
    a recording one host stored is opened on any other, and a debtor's number has one key."""
    first = Settings(data_dir=tmp / hosts[0])
    key_ring(first)
    audit_key(first)
    load_or_create_secret(first.number_key_file)
    for other in hosts[1:]:
        shutil.copytree(tmp / hosts[0] / "keys", tmp / other / "keys")


@pytest.fixture
def carrier(tmp_path: Path) -> Iterator[int]:
    """One SIPp carrier both dialer hosts dial out through: every call rings 2 s, is
    answered, and ends with the dialer's BYE."""
    port = free_port(socket.SOCK_DGRAM)
    log = (tmp_path / "carrier.log").open("w")
    proc = sipp_server("caps_carrier.xml", port, stdout=log)
    try:
        _wait_bound(port, proc, limit_s=10)
        yield port
    finally:
        proc.kill()
        proc.wait()
        log.close()


@pytest.fixture
def site(
    dialguard_env: dict[str, str],
    database_url: str,
    seaweed: EmbeddedS3,
    bucket_name: str,
    carrier: int,
    tmp_path: Path,
) -> Iterator[Site]:
    assert seaweed.credentials is not None
    rpc_port = free_port()
    env = dialguard_env | {
        "DIALGUARD_DATABASE_URL": database_url,
        "DIALGUARD_S3_ENDPOINT": seaweed.endpoint,
        "DIALGUARD_S3_ACCESS_KEY": seaweed.credentials.access_key,
        "DIALGUARD_S3_SECRET_KEY": seaweed.credentials.secret_key,
        "DIALGUARD_S3_BUCKET": bucket_name,
        "DIALGUARD_S3_REPLICA_BUCKET": bucket_name + "-r",
        "DIALGUARD_EDGE_SECRET": secrets.token_hex(32),
        "DIALGUARD_EDGE_ADDRESSES": EDGE,
        "DIALGUARD_DIALER_HOSTS": f"{HOST_A},{HOST_B}",
        "DIALGUARD_DIALER_WORKERS": "1",  # one worker (2 calls) a host
        "DIALGUARD_TRUNK_URI": f"sip:127.0.0.1:{carrier}",
        "DIALGUARD_CALLER_IDS": "+861058000000",
        "DIALGUARD_TRANSCRIBE_WORKERS": "0",
        "DIALGUARD_LOG_LEVEL": "INFO",
    }
    for agent, password in AGENTS.items():
        for args in (
            ["admin", "create-user", agent, "--role", "agent", "--password-stdin"],
            ["admin", "set-sip-password", agent, "--password-stdin"],
        ):
            made = dialguard(args, env, stdin=password + "\n")
            assert made.returncode == 0, made.stderr
    _shared_keys(tmp_path, [EDGE, HOST_A, HOST_B])
    edge_env = env | {
        "DIALGUARD_ROLE": "edge",
        "DIALGUARD_SIP_HOST": EDGE,
        "DIALGUARD_DATA_DIR": str(tmp_path / EDGE),
        "DIALGUARD_EDGE_RPC_PORT": str(rpc_port),
    }
    made_site = Site(env, Running(edge_env, tmp_path / "edge.log"), {}, tmp_path, rpc_port)
    try:
        for address in (HOST_A, HOST_B):
            made_site.start_host(address)
        for running in (made_site.edge, *made_site.hosts.values()):
            _up(running, UP_WITHIN)
        yield made_site
    finally:
        for running in (*made_site.hosts.values(), made_site.edge):
            running.close()


@dataclass(frozen=True)
class Placed:
    after_stop_s: float  # when the call was placed, from the stop (negative: before)
    status: int
    host: str | None  # the dialer host whose worker answered (the 200's Contact)
    setup_s: float


_numbers = iter(range(100))


def _number() -> str:
    """A fresh number in a zone where it is daytime now: the policy refuses no call for
    its hour, and no number reaches its daily cap."""
    base = _number_in_daytime(datetime.now(UTC))
    return base[:-2] + f"{next(_numbers) % 100:02d}"


def _call(site: Site, agent: str, stopped_at: float | None) -> Placed:
    caller = Agent(EDGE, site.sip, agent, AGENTS[agent], timeout=12.0)
    started = time.monotonic()
    try:
        reply = caller.call(number=_number(), hold_s=1.0)
    except (AssertionError, OSError):
        reply = None  # the BYE found no dialog: the call failed
    finally:
        caller.close()
    contact = reply.header("contact") if reply is not None else None
    found = re.search(r"@([0-9.]+):", contact or "")
    return Placed(
        started - stopped_at if stopped_at is not None else -1.0,
        reply.status if reply is not None else 0,
        found.group(1) if found else None,
        time.monotonic() - started,
    )


def _pairs(site: Site, rounds: int, stopped_at: float | None = None) -> list[Placed]:
    """`rounds` times two calls at once, one per agent: with both hosts up the edge gives
    each host one (the least loaded worker); a round starts every 0.5 s."""
    placed: list[Placed] = []
    with ThreadPoolExecutor(2 * rounds) as pool:
        futures = []
        for _ in range(rounds):
            futures += [pool.submit(_call, site, agent, stopped_at) for agent in AGENTS]
            time.sleep(0.5)
        placed = [f.result() for f in futures]
    return placed


def _both_active(site: Site) -> bool:
    try:
        flags = site.destinations()
    except Exception:  # the edge's RPC is not up yet
        return False
    return {host: flag[:1] for host, flag in flags.items()} == {HOST_A: "A", HOST_B: "A"}


def _tree(running: Running) -> list[psutil.Process]:
    return [psutil.Process(running.process.pid), *running.tree()]


def _check_moved(site: Site, stopped_at: float, how: str) -> None:
    """New calls from the moment of the stop: every one placed more than 2 s after it is
    bridged, by the host still up; the stopped host leaves the edge's set meanwhile."""
    left: list[float] = []

    def inactive() -> bool:
        try:
            return site.destinations().get(HOST_B, "A")[:1] == "I"
        except Exception:  # an RPC answer lost on a loaded machine: ask again
            return False

    def watch() -> None:
        if wait_for(inactive, 20.0, 0.05):
            left.append(time.monotonic() - stopped_at)

    watcher = threading.Thread(target=watch)
    watcher.start()
    placed: list[Placed] = []
    while sum(c.after_stop_s > MOVED_WITHIN_S for c in placed) < 6:
        placed += _pairs(site, 1, stopped_at)
    watcher.join()
    for call in placed:
        print(f"{how}: {call}")
    print(f"{how}: the edge marked host B inactive {left} s after the stop")
    assert left, site.destinations()
    late = [c for c in placed if c.after_stop_s > MOVED_WITHIN_S]
    assert [(c.status, c.host) for c in late] == [(200, HOST_A)] * len(late), placed


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_calls_spread_over_two_dialer_hosts_and_move_when_one_stops(site: Site) -> None:
    assert wait_for(lambda: _both_active(site), 20.0), site.destinations()
    spread = _pairs(site, 2)
    assert [c.status for c in spread] == [200] * 4, spread
    assert {c.host for c in spread} == {HOST_A, HOST_B}, spread
    # around the edge, a dialer host's worker takes no call, whatever the login
    worker = int(site.env["DIALGUARD_DIALER_PORT_BASE"])
    rogue = Agent(HOST_A, worker, "agent1", AGENTS["agent1"], source="127.0.0.5", timeout=3.0)
    try:
        refused = rogue.call(number=_number())
    finally:
        rogue.close()
    assert refused is None or refused.status == 403, refused

    # a dialer host is stopped the orderly way (its supervisor gets SIGTERM)
    host_b = site.hosts[HOST_B]
    host_b.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    _check_moved(site, stopped_at, "SIGTERM")
    assert host_b.process.wait(60) == 0

    # it comes back and takes calls again; then it dies at once, every process of it
    site.start_host(HOST_B)
    _up(site.hosts[HOST_B], UP_WITHIN)
    assert wait_for(lambda: _both_active(site), 20.0), site.destinations()
    again = _pairs(site, 1)
    assert sorted((c.status, c.host) for c in again) == [(200, HOST_A), (200, HOST_B)], again
    tree = _tree(site.hosts[HOST_B])
    for process in tree:
        process.kill()
    stopped_at = time.monotonic()
    _check_moved(site, stopped_at, "SIGKILL")
    psutil.wait_procs(tree, timeout=10)


# --- the settings that make a host an edge or a dialer host (fast) --------------------

PG = "postgresql+psycopg://dialguard@10.0.2.5/dialguard"
DIALER_HOST: dict[str, Any] = {
    "role": "dialer",
    "sip_host": "10.0.1.11",
    "database_url": PG,
    "s3_endpoint": "10.0.2.6:9000",
    "s3_access_key": "key",
    "s3_secret_key": "secret",
    "edge_secret": "ab" * 32,
    "edge_addresses": "10.0.0.5",
    "trunk_uri": "sip:carrier.example:5060",
    "caller_ids": "+861058000000",
    "dialer_workers": 2,
}


def test_a_host_runs_the_parts_its_role_names() -> None:
    def names(**values: object) -> list[str]:
        settings = Settings(**(DIALER_HOST | values))
        return [child.name for child in role_children(settings, plan_dialer(settings))]

    assert names() == ["dialer-0", "dialer-1", "uploader", "announcements"]
    assert names(role="edge") == ["sip-edge"]
    assert names(role="transcribe", transcribe_workers=2) == [
        "transcriber-0",
        "transcriber-1",
        "qa",
    ]
    assert names(role="console") == ["api"]
    every = names(role="all")
    assert {"dialer-0", "dialer-1", "sip-edge", "uploader", "qa", "api"} <= set(every)
    assert Settings(role=" Edge , console ").roles == {"edge", "console"}
    with pytest.raises(ValueError, match="proxy is not a role"):
        Settings(role="edge,proxy")


def test_a_host_with_some_parts_is_refused_what_it_cannot_share() -> None:
    assert layout_problem(Settings(**DIALER_HOST)) is None
    assert layout_problem(Settings(role="all")) is None  # one host: SQLite, embedded S3
    for missing, said in (
        ({"database_url": None}, "DIALGUARD_DATABASE_URL"),
        ({"s3_endpoint": None}, "DIALGUARD_S3_ENDPOINT"),
        ({"edge_secret": None}, "DIALGUARD_EDGE_SECRET"),
        ({"edge_addresses": ""}, "DIALGUARD_EDGE_ADDRESSES"),
        ({"trunk_uri": None, "caller_ids": ""}, "DIALGUARD_TRUNK_URI"),
    ):
        problem = layout_problem(Settings(**(DIALER_HOST | missing)))
        assert problem is not None and said in problem, (missing, problem)
    # an edge keeps no recordings: no S3 asked of it; one running the workers too needs no
    # shared secret (it makes one per run)
    assert layout_problem(Settings(**(DIALER_HOST | {"role": "edge", "s3_endpoint": None}))) is None
    assert (
        layout_problem(Settings(**(DIALER_HOST | {"role": "edge,dialer", "edge_secret": None})))
        is None
    )


def test_dialer_host_workers_ring_agents_through_the_first_edge_address() -> None:
    dialer = Settings(**(DIALER_HOST | {"edge_addresses": "10.0.0.5, 10.0.0.6", "sip_port": 5070}))
    assert dialer.edge_proxy == "10.0.0.5:5070"
    assert Settings(sip_host="10.0.1.11").edge_proxy == "10.0.1.11:5060"  # edge here
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(dialer_hosts="10.0.1.11,dialer2.example")


def test_the_edge_and_edge_config_dispatch_to_every_dialer_hosts_workers(
    dialguard_env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings(role="edge", dialer_hosts="10.0.1.11,10.0.1.12", dialer_workers=2)
    listed = edge_workers_list(settings, edge_workers_per_host(settings))
    env = dialguard_env | {
        "DIALGUARD_ROLE": "edge",
        "DIALGUARD_DIALER_HOSTS": "10.0.1.11,10.0.1.12",
        "DIALGUARD_DIALER_WORKERS": "2",
        "DIALGUARD_DIALER_PORT_BASE": "5100",
        "DIALGUARD_EDGE_SECRET": "cd" * 32,
    }
    made = dialguard(["edge", "config", "--dir", str(tmp_path / "edge"), "--write"], env)
    assert made.returncode == 0, made.stderr
    written = (tmp_path / "edge" / "dispatcher.list").read_text()
    assert written == listed
    assert [line.split()[1] for line in written.splitlines()] == [
        f"sip:{host}:{port};transport=udp"
        for host in ("10.0.1.11", "10.0.1.12")
        for port in (5100, 5101)
    ]
    # an edge alone cannot guess how many workers another host runs
    unsized = dialguard(["edge", "config"], env | {"DIALGUARD_DIALER_WORKERS": "auto"})
    assert unsized.returncode != 0 and "DIALGUARD_DIALER_WORKERS" in unsized.stderr


def test_up_refuses_a_dialer_host_on_its_own_sqlite(dialguard_env: dict[str, str]) -> None:
    env = dialguard_env | {"DIALGUARD_ROLE": "dialer", "DIALGUARD_SIP_HOST": "127.0.0.2"}
    refused = dialguard(["up"], env, timeout=60)
    assert refused.returncode == 1
    assert "DIALGUARD_DATABASE_URL" in refused.stderr, refused.stderr

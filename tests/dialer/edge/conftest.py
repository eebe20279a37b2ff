"""A real Kamailio edge on 127.0.0.1 with free ports, over a migrated SQLite database,
in front of SIPp user agent servers standing in for dialer workers."""

from __future__ import annotations

import datetime
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.migrate import upgrade
from dialer.edge.config import EdgeBans, EdgeConfig
from dialer.edge.dispatch import dispatcher_list
from dialer.edge.process import EdgeProcess, write_config
from dialer.edge.tls import ensure_self_signed
from dialer.softphones import set_sip_password
from recording.db.engine import make_engine, session_factory
from tests.helpers import free_port

DATA = Path(__file__).resolve().parents[2] / "data" / "sipp"
AGENTS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}


@dataclass
class WorkerUas:
    """A SIPp UAS on one worker port: answers OPTIONS (-aa) and the calls the edge sends."""

    port: int
    directory: Path
    scenario: str = "edge_worker_uas.xml"
    process: subprocess.Popen[bytes] | None = None

    @property
    def messages(self) -> Path:
        return self.directory / f"uas-{self.port}.log"

    def start(self) -> WorkerUas:
        self.process = subprocess.Popen(
            [
                "sipp",
                "-sf",
                str(DATA / self.scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-aa",
                "-nostdin",
                "-nd",
                "-trace_msg",
                "-message_file",
                str(self.messages),
                "-trace_err",
                "-error_file",
                os.devnull,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def invites(self) -> list[str]:
        """The INVITEs this worker received, as text."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(errors="replace")
        chunks = re.split(r"(?m)^-{20,}.*$", text)
        found = []
        for chunk in chunks:
            body = chunk.split("\n", 2)[-1].strip("\n") if "message received" in chunk else ""
            if body.startswith("INVITE "):
                found.append(body.split("\n\n", 1)[0])
        return found


@dataclass
class Edge:
    process: EdgeProcess
    config: EdgeConfig
    secret: str
    database_url: str
    workers: list[WorkerUas] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.config.port

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


def migrated_sqlite(directory: Path) -> str:
    url = f"sqlite:///{directory / 'dialguard.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.datetime.now(datetime.UTC)
    with session_factory(engine)() as session:
        for user, password in AGENTS.items():
            set_sip_password(session, user, "dialguard", password, now)
    engine.dispose()
    return url


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


StartEdge = Callable[..., Edge]


def start_edge_at(
    directory: Path,
    workers: int = 1,
    bans: EdgeBans | None = None,
    algorithm: str = "MD5",
    database_url: str | None = None,
    uas_scenarios: list[str] | None = None,
    started: list[Edge] | None = None,
) -> Edge:
    """An edge (and `workers` SIPp UASes behind it) kept in `directory`; the caller stops
    it (an edge appended to `started` before it starts, so a failed start is cleaned up)."""
    directory.mkdir(parents=True, exist_ok=True)
    url = database_url or migrated_sqlite(directory)
    scenarios = uas_scenarios or ["edge_worker_uas.xml"] * workers
    uases = [
        WorkerUas(free_port(socket.SOCK_DGRAM), directory, scenario).start()
        for scenario in scenarios
    ]
    cert, key = ensure_self_signed(
        directory / "tls", "127.0.0.1", datetime.datetime.now(datetime.UTC)
    )
    config = EdgeConfig(
        host="127.0.0.1",
        port=free_port(socket.SOCK_DGRAM),
        tls_port=_free_tcp_port(),
        realm="dialguard",
        algorithm=algorithm,
        dispatcher_list=directory / "dispatcher.list",
        tls_cert=cert,
        tls_key=key,
        rpc_port=_free_tcp_port(),
        secrets_file=directory / "kamailio-secrets.cfg",
        bans=bans or EdgeBans(),
    )
    secret = secrets.token_hex(32)
    path = write_config(config, secret, url, dispatcher_list("127.0.0.1", [u.port for u in uases]))
    edge = Edge(EdgeProcess(config, path), config, secret, url, uases)
    if started is not None:
        started.append(edge)
    edge.process.start(timeout=20)
    return edge


@pytest.fixture
def start_edge(tmp_path: Path) -> Iterator[StartEdge]:
    """Start an edge (and `workers` SIPp UASes behind it); stopped after the test."""
    started: list[Edge] = []

    def start(
        workers: int = 1,
        bans: EdgeBans | None = None,
        algorithm: str = "MD5",
        database_url: str | None = None,
        uas_scenarios: list[str] | None = None,
    ) -> Edge:
        return start_edge_at(
            tmp_path / f"edge{len(started)}",
            workers,
            bans,
            algorithm,
            database_url,
            uas_scenarios,
            started,
        )

    yield start
    for edge in started:
        edge.process.stop()
        for uas in edge.workers:
            uas.stop()


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()

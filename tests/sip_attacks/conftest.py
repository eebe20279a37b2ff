"""A real dialer worker to attack: the B2BUA of `dialguard up` with its own digest login.

One worker per test module (module scope): starting pjsua2 costs seconds on a
loaded 2-core box, and a module's attacks share one target as a real attacker's
would. The worker runs `dialer.process.run` in its own process against a
migrated SQLite database holding one real agent ("agent1"), exactly as
`tests/dialer/running.py` starts one, but bound on UDP and TCP ports both
free. The carrier is a UDP socket on the trunk port that records what
reaches it: an attack must never get a call to the trunk.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.migrate import upgrade
from dialer.models import CallAttempt
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm
from dialer.sip.probe import wait_answering
from dialer.softphones import set_sip_password
from recording.db.engine import make_engine, session_factory
from tests.dialer.running import Parts, office_hours
from tests.helpers import free_port

AGENT = "agent1"
PASSWORD = "Kx7-pelican-Quartz-42"  # deliberately in no wordlist
REALM = "dialguard"


def _serve(parts: Parts, config: B2buaConfig) -> None:
    from dialer.process import run  # loads pjsua2: only in the worker's own process

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as `dialguard up` stops a child
    run(config, parts.site(), stop)


class Carrier:
    """The trunk: a UDP socket that keeps whatever the worker sends it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while True:
            try:
                self.received.append(self.sock.recv(65535))
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@dataclass
class Worker:
    host: str
    port: int
    process: Any
    carrier: Carrier
    database_url: str

    def call_attempts(self) -> int:
        """Calls the worker booked: an attack that got as far as the policy would show here."""
        engine = make_engine(self.database_url)
        try:
            with session_factory(engine)() as session:
                return int(session.scalar(select(func.count()).select_from(CallAttempt)) or 0)
        finally:
            engine.dispose()


@contextlib.contextmanager
def running_worker(tmp: Path) -> Iterator[Worker]:
    database_url = f"sqlite:///{tmp / 'dialguard.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        set_sip_password(session, AGENT, REALM, PASSWORD, office_hours())
    engine.dispose()
    parts = Parts(database_url, tmp / "data")
    carrier = Carrier()
    port = free_port()
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{carrier.port}",
        caller_ids=["+861058000000"],
        recording_dir=parts.calls,
        secret=os.urandom(32),
        realm=REALM,
        algorithms=(Algorithm.MD5, Algorithm.SHA256),  # as `dialguard up` offers them
    )
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(parts, config))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield Worker("127.0.0.1", port, process, carrier, database_url)
    finally:
        process.terminate()
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join()
        carrier.close()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    with running_worker(tmp_path_factory.mktemp("worker")) as running:
        yield running

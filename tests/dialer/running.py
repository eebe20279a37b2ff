"""A dialer worker for tests, as `dialguard up` runs it: the site it is given (`Parts`), the
process on loopback (`dialer`), and waiting for what it books.

SIPp plays the agent's softphone and the carrier (tests/dialer/sip/test_b2bua.py);
the dialer runs in its own process against a real database of each backend.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dialer.models import CallAttempt
from dialer.numbers import load_or_create_secret
from dialer.policy import preset
from dialer.process import run
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm
from dialer.sip.probe import wait_answering
from dialer.site import CallSite
from recording.db.engine import make_engine, session_factory
from recording.keys import FileKeyRing
from recording.models import Recording
from tests.helpers import free_port

SH = ZoneInfo("Asia/Shanghai")


def office_hours() -> datetime:
    """A Tuesday morning in Shanghai: inside every preset's calling window."""
    return datetime(2026, 11, 24, 10, 0, tzinfo=SH).astimezone(UTC)


@dataclass
class Parts:
    database_url: str
    data: Path

    @property
    def calls(self) -> Path:
        return self.data / "calls"

    @property
    def spool(self) -> Path:
        return self.data / "spool"

    def site(self) -> CallSite:
        return CallSite(
            sessions=session_factory(make_engine(self.database_url)),
            policy=preset("cn-default"),
            site_tz=SH,
            calendar=None,
            number_secret=load_or_create_secret(self.data / "keys" / "number-key"),
            spool=self.spool,
            keys=FileKeyRing(self.data / "keys" / "kek.json"),
            retention_days=730,
            clock=office_hours,
        )


def _serve(parts: Parts, config: B2buaConfig) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as `dialguard up` stops a child
    run(config, parts.site(), stop)


@dataclass
class Dialer:
    port: int
    trunk_port: int
    process: Any


@contextlib.contextmanager
def dialer(parts: Parts) -> Iterator[Dialer]:
    ctx = multiprocessing.get_context("spawn")
    port, trunk_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=parts.calls,
        secret=os.urandom(32),
        algorithms=(Algorithm.MD5, Algorithm.SHA256),  # as `dialguard up` offers them
    )
    process = ctx.Process(target=_serve, args=(parts, config))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield Dialer(port, trunk_port, process)
    finally:
        process.terminate()
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join()


def wait_for(what: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def attempts(engine: Engine) -> list[CallAttempt]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(CallAttempt).order_by(CallAttempt.id)))


def recordings(engine: Engine) -> list[Recording]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Recording)))

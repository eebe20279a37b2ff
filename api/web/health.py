"""Component health as `/healthz` reports it: one line per component, all or nothing.

Each check asks the component itself (SQL round trip, S3 bucket call, SIP
OPTIONS, a fresh heartbeat) instead of trusting that a process exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.migrate import current_revision, head_revision
from dialer.errors import SipUnreachable
from dialer.sip.probe import sip_ping
from recording.db.heartbeats import is_alert, live_instances
from recording.errors import StorageError
from recording.storage import S3Target, check_bucket, make_client


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str


def check_database(engine: Engine, head: str) -> ComponentHealth:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except Exception as exc:
        return ComponentHealth("database", False, f"unreachable: {type(exc).__name__}")
    if current != head:
        return ComponentHealth("database", False, f"schema at {current}, code needs {head}")
    return ComponentHealth("database", True, f"{engine.dialect.name}, schema {head}")


def check_storage(name: str, target: S3Target) -> ComponentHealth:
    try:
        check_bucket(make_client(target, timeout=3.0, retries=0), target)
    except StorageError as exc:
        return ComponentHealth(name, False, str(exc))
    return ComponentHealth(name, True, f"{target.label} (object lock on)")


def check_sip(host: str, port: int) -> ComponentHealth:
    try:
        reply = sip_ping(host, port, timeout=2.0)
    except SipUnreachable as exc:
        return ComponentHealth("dialer", False, str(exc))
    return ComponentHealth("dialer", True, f"{host}:{port} answers {reply.status} {reply.reason}")


def check_worker(
    sessions: sessionmaker[Session], component: str, now: datetime, expected: int = 1
) -> ComponentHealth:
    try:
        with sessions() as session:
            live = live_instances(session, component, now)
    except Exception as exc:
        return ComponentHealth(component, False, f"database unreachable: {type(exc).__name__}")
    if len(live) < expected:
        return ComponentHealth(component, False, f"{len(live)} of {expected} workers alive")
    details = sorted({row.detail for row in live})
    # alive but raising an alarm (storage refusing uploads, say): not healthy, and says why
    healthy = not any(is_alert(detail) for detail in details)
    return ComponentHealth(component, healthy, "; ".join(details))


class HealthChecker:
    """Runs every component's check; built once per API process."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        storage: tuple[S3Target, S3Target],
        sip: tuple[str, int],
        workers: dict[str, int],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.head = head_revision(engine)
        self.sessions = sessions
        self.storage = storage
        self.sip = sip
        self.workers = workers
        self.clock = clock

    def check(self) -> list[ComponentHealth]:
        now = self.clock()
        primary, replica = self.storage
        results = [
            check_database(self.engine, self.head),
            check_storage("storage", primary),
            check_storage("storage-replica", replica),
            check_sip(*self.sip),
        ]
        results += [
            check_worker(self.sessions, name, now, expected)
            for name, expected in self.workers.items()
            if expected > 0
        ]
        return results

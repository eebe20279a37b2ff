"""Worker heartbeats: how the API knows a worker on any host is alive.

Workers may run on other machines (a GPU box for transcription), so liveness
goes through the shared database, not through the supervisor's process table.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from recording.db.engine import Base, as_utc

log = logging.getLogger(__name__)

#: A worker that has not beaten for this long is reported down.
STALE_AFTER = timedelta(seconds=15)
#: A worker alive but unable to do its job (storage refusing the uploader) starts its
#: heartbeat detail with this, so that health reports it failing, with the reason.
ALERT_PREFIX = "ALERT: "


def alert_detail(problem: str, rest: str = "") -> str:
    """The detail of a worker that is alive but cannot do its job: `ALERT: <problem>; <rest>`."""
    return f"{ALERT_PREFIX}{problem}" + (f"; {rest}" if rest else "")


def is_alert(detail: str) -> bool:
    return detail.startswith(ALERT_PREFIX)


class Heartbeat(Base):
    __tablename__ = "component_heartbeats"

    component: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str] = mapped_column(String(500), default="")


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(
    session: Session, component: str, instance: str, detail: str, now: datetime, started: datetime
) -> None:
    """Record that `instance` of `component` is alive; an upsert both databases understand."""
    result = session.execute(
        update(Heartbeat)
        .where(Heartbeat.component == component, Heartbeat.instance == instance)
        .values(beat_at=now, detail=detail[:500])
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            Heartbeat(
                component=component,
                instance=instance,
                pid=os.getpid(),
                started_at=started,
                beat_at=now,
                detail=detail[:500],
            )
        )
    session.commit()


def forget(session: Session, component: str, instance: str) -> None:
    session.execute(
        delete(Heartbeat).where(Heartbeat.component == component, Heartbeat.instance == instance)
    )
    session.commit()


def live_instances(session: Session, component: str, now: datetime) -> list[Heartbeat]:
    rows = session.scalars(select(Heartbeat).where(Heartbeat.component == component)).all()
    return [row for row in rows if now - as_utc(row.beat_at) <= STALE_AFTER]


def run_with_heartbeat(
    component: str,
    sessions: sessionmaker[Session],
    stop: threading.Event,
    tick: Callable[[], str],
    interval: float = 2.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    describe: Callable[[str], str] | None = None,
) -> None:
    """Call `tick` every `interval` seconds until `stop`, beating with what it last reported.

    Beats come from a thread of their own, so a long tick (a three-hour call
    being transcribed) does not make a working worker look dead. A failing
    tick or an unreachable database is logged and retried, never fatal: a
    worker that dies on a database blip would take its in-flight work with it.

    `describe`, if given, makes each beat's detail from the last tick's status
    at the moment of the beat: for a worker whose tick can hang (the uploader
    on frozen storage), what the last finished tick said is no longer true.
    """
    instance = instance_name()
    started = clock()
    status = ["starting"]

    def detail() -> str:
        if describe is None:
            return status[0]
        try:
            return describe(status[0])
        except Exception as exc:
            return f"{status[0]} (not measured now: {type(exc).__name__})"

    def beat_forever() -> None:
        while True:
            try:
                with sessions() as session:
                    beat(session, component, instance, detail(), clock(), started)
            except Exception:
                log.exception("heartbeat failed", extra={"component": component})
            if stop.wait(interval):
                return

    beater = threading.Thread(target=beat_forever, name=f"{component}-heartbeat", daemon=True)
    beater.start()
    while not stop.is_set():
        try:
            status[0] = tick()
        except Exception as exc:
            log.exception("worker tick failed", extra={"component": component})
            status[0] = f"last tick failed: {type(exc).__name__}"
        stop.wait(interval)
    beater.join(interval + 5)
    try:
        with sessions() as session:
            forget(session, component, instance)
    except Exception:
        log.warning("could not clear heartbeat on exit", extra={"component": component})

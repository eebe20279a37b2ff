"""The worker loop keeps beating through failures and long work, and clears its row on exit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from recording.db.engine import session_factory
from recording.db.heartbeats import live_instances, run_with_heartbeat


def _details(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [r.detail for r in live_instances(session, "probe", datetime.now(UTC))]


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_failing_tick_does_not_end_the_loop(engine: Engine) -> None:
    sessions = session_factory(engine)
    stop = threading.Event()
    ticks: list[int] = []

    def tick() -> str:
        ticks.append(1)
        if len(ticks) == 2:
            raise RuntimeError("disk hiccup")
        return f"tick {len(ticks)}"

    worker = threading.Thread(target=run_with_heartbeat, args=("probe", sessions, stop, tick, 0.05))
    worker.start()
    assert _wait_for(
        lambda: any(d.startswith("tick") and d != "tick 1" for d in _details(sessions))
    )
    stop.set()
    worker.join(20)
    assert not worker.is_alive() and len(ticks) >= 3
    assert _details(sessions) == []  # a clean stop leaves no stale row


def test_a_long_tick_keeps_the_worker_alive(engine: Engine) -> None:
    """A three-hour call being transcribed must not look like a dead worker."""
    sessions = session_factory(engine)
    stop = threading.Event()
    release = threading.Event()

    def tick() -> str:
        release.wait(20)
        return "done"

    worker = threading.Thread(target=run_with_heartbeat, args=("probe", sessions, stop, tick, 0.05))
    worker.start()
    assert _wait_for(lambda: _details(sessions) == ["starting"])
    with sessions() as session:
        first = live_instances(session, "probe", datetime.now(UTC))[0].beat_at
    assert _wait_for(lambda: _beat_at(sessions) != first)  # still beating mid-tick
    release.set()
    assert _wait_for(lambda: _details(sessions) == ["done"])
    stop.set()
    worker.join(20)


def _beat_at(sessions: sessionmaker[Session]) -> datetime:
    with sessions() as session:
        return live_instances(session, "probe", datetime.now(UTC))[0].beat_at

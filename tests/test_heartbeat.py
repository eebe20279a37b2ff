"""The worker loop keeps beating through failures and clears its row on exit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from recording.db import session_factory
from recording.heartbeat import live_instances, run_with_heartbeat


def test_loop_beats_survives_a_failing_tick_and_clears_on_stop(engine: Engine) -> None:
    sessions = session_factory(engine)
    stop = threading.Event()
    ticks: list[int] = []
    seen: list[str] = []

    def tick() -> str:
        ticks.append(1)
        if len(ticks) == 2:
            raise RuntimeError("disk hiccup")
        if len(ticks) == 4:
            with sessions() as session:
                seen.extend(r.detail for r in live_instances(session, "probe", datetime.now(UTC)))
            stop.set()
        return f"tick {len(ticks)}"

    worker = threading.Thread(target=run_with_heartbeat, args=("probe", sessions, stop, tick, 0.01))
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    assert len(ticks) == 4  # the failing second tick did not end the loop
    assert seen == ["tick 3"]
    with sessions() as session:
        assert live_instances(session, "probe", datetime.now(UTC)) == []

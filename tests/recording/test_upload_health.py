"""The uploader's health line tells the truth: what waits, how long, and what hangs.

The rules themselves (`recording.upload_health`) without I/O; then the real
uploader against a SeaweedFS frozen with SIGSTOP, where the line once said
"0 waiting in spool" with recordings waiting.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.recordings.erasure import forget_derived
from recording.db.engine import session_factory
from recording.db.heartbeats import is_alert, live_instances
from recording.embedded_s3 import EmbeddedS3
from recording.keys import FileKeyRing
from recording.models import Recording
from recording.storage import ensure_bucket, make_client
from recording.store import CallInfo, Copy, spool_call
from recording.upload_health import STUCK_AFTER, Activity, Backlog, alarms, waiting_line
from recording.uploader import COMPONENT, Progress, backlog, run_uploader
from recording.versions import stored
from tests.audio import call_audio

PRIMARY = "http://127.0.0.1:9000/rec"
REPLICA = "http://127.0.0.1:9001/rec-r"


# --- the rules -----------------------------------------------------------------------------


def test_the_line_says_what_waits_and_for_how_long() -> None:
    assert waiting_line(Backlog(0)) == "0 waiting in spool"
    assert waiting_line(Backlog(3, 4.2, "r1")) == "3 waiting in spool, oldest 4 s"
    assert waiting_line(Backlog(3, 200.0, "r1")) == "3 waiting in spool, oldest 3 min"
    assert waiting_line(Backlog(1, 4 * 3600.0, "r1")) == "1 waiting in spool, oldest 4 h"
    assert alarms(Backlog(3, 4.2, "r1"), Activity(idle_s=600)) == []


def test_a_request_without_answer_for_20_s_is_an_alert_naming_the_upload() -> None:
    busy = f"upload of r1 to {PRIMARY}"
    assert alarms(Backlog(2, 19.0, "r1"), Activity(busy, busy_s=STUCK_AFTER - 1)) == []
    said = alarms(Backlog(2, 25.0, "r1"), Activity(busy, busy_s=STUCK_AFTER + 5))
    assert said == [f"{busy} has had no answer for 25 s: storage is frozen or unreachable"]


def test_a_backlog_that_does_not_move_is_an_alert_naming_who_holds_it() -> None:
    stuck = Backlog(2, 40.0, "r1", "store@host:4242")
    said = alarms(stuck, Activity(idle_s=30.0))
    assert said == [
        "uploads stuck: nothing stored for 30 s (oldest waiting r1, its upload held by "
        "store@host:4242)"
    ]
    # Draining after an outage: old recordings, but one was just stored. Not stuck.
    assert alarms(stuck, Activity(idle_s=3.0)) == []


def test_a_stuck_backlog_names_the_request_in_flight_before_it_is_an_alert_itself() -> None:
    """The upload starts after the oldest recording was spooled, so the backlog's limit comes
    first: the line already says which request has no answer."""
    busy = f"upload of r1 to {PRIMARY}"
    said = alarms(Backlog(3, 21.0, "r1"), Activity(busy, busy_s=6.0, idle_s=40.0))
    assert said == [
        f"uploads stuck: nothing stored for 40 s (oldest waiting r1); {busy} has had no "
        "answer for 6 s"
    ]


def test_getting_stuck_is_logged_once_per_cause_backlog_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator reading logs, not the console, learns of it at the same beat."""
    now = [0.0]
    progress = Progress(monotonic=lambda: now[0])
    now[0] = 15.0
    progress.watch(f"upload of r1 to {PRIMARY}")
    stuck = Backlog(3, 21.0, "r1")
    with caplog.at_level(logging.ERROR, logger="recording.uploader"):
        for at in (21.0, 23.0, 25.0, 35.0, 37.0):
            now[0] = at
            assert is_alert(progress.detail(stuck))
    said = [r.getMessage() for r in caplog.records if "ALERT upload stuck" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith("ALERT upload stuck: uploads stuck: nothing stored for 21 s")
    assert f"upload of r1 to {PRIMARY} has had no answer for 20 s" in said[1]


def test_every_bucket_that_refuses_is_named() -> None:
    problems = {
        PRIMARY: f"storage unreachable at {PRIMARY} (MaxRetryError)",
        REPLICA: f"storage is full at {REPLICA} (XMinioStorageFull)",
    }
    said = alarms(Backlog(2, 5.0, "r1"), Activity(problems=problems))
    assert said == list(problems.values())


# --- the uploader, storage frozen -------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """A SeaweedFS of this module's own: it gets frozen here."""
    s3 = EmbeddedS3(tmp_path_factory.mktemp("health-s3")).start()
    yield s3
    if s3.pid:
        os.kill(s3.pid, signal.SIGCONT)
    s3.stop()


def _wait(what: str, check: Callable[[], bool], limit: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            pytest.fail(f"{what}: not within {limit:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


def test_frozen_storage_is_an_alert_within_30_s_with_the_real_backlog(
    store: EmbeddedS3, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sessions: sessionmaker[Session] = session_factory(engine)
    keys = FileKeyRing(tmp_path / "keys" / "kek.json")
    capture = call_audio(tmp_path / "c.wav", [("agent", 0.2, "This call is recorded.")], 2.0)
    pair: list[Copy] = []
    name = f"h-{secrets.token_hex(5)}"
    for role, bucket in (("primary", name), ("replica", name + "-r")):
        target = store.target(bucket)
        ensure_bucket(make_client(target), target, 730)
        # the client `dialguard up` gives the uploader (30 s): a frozen store hangs it
        pair.append(Copy(role, target, make_client(target, timeout=30.0)))
    copies = (pair[0], pair[1])
    spool = tmp_path / "spool"
    stop = threading.Event()
    audited: list[Any] = []
    uploader = threading.Thread(
        target=run_uploader,
        args=(sessions, spool, copies, lambda *a: audited.append(a), stop, forget_derived),
    )

    def detail() -> str:
        with sessions() as session:
            live = live_instances(session, COMPONENT, datetime.now(UTC))
            return live[0].detail if live else ""

    assert store.pid is not None
    uploader.start()
    try:
        _wait("the uploader beats", lambda: detail() == "0 waiting in spool", 30)
        os.kill(store.pid, signal.SIGSTOP)
        now = datetime.now(UTC)
        ids = [
            spool_call(sessions, spool, keys, capture, CallInfo(f"h-{i}", "a7", now), 730, now).id
            for i in range(3)
        ]
        took = _wait("the heartbeat turns to an ALERT", lambda: is_alert(detail()), 30)
        said = detail()
        assert "3 waiting in spool" in said, said  # measured now, not the last round's "0"
        assert "no answer" in said and store.endpoint in said, said
        assert any("ALERT upload stuck" in r.getMessage() for r in caplog.records)
        print(f"ALERT {took:.0f} s after the freeze: {said}")
    finally:
        os.kill(store.pid, signal.SIGCONT)
    try:
        _wait("the backlog drains once storage runs", lambda: backlog(sessions) == 0, 90)
        _wait("the line is plain again", lambda: detail() == "0 waiting in spool", 30)
    finally:
        stop.set()
        uploader.join(60)
    with sessions() as session:
        rows = [session.get(Recording, i) for i in ids]
    for row in rows:
        assert row is not None and row.last_error is None
        assert row.stored_at is not None and row.stored_at >= row.created_at
        for copy in copies:
            assert len(stored(copy, row.object_key)) == 1, f"{row.id} twice in {copy.name}"

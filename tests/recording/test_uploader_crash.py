"""kill -9 of the uploader in the middle of its uploads, then a restart: every recording
arrives, once, intact, and the spool empties."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.recordings.erasure import forget_derived
from api.web.services import Services
from recording.db.engine import make_engine, session_factory
from recording.models import Recording, RecordingStatus
from recording.storage import S3Target, make_client
from recording.store import CallInfo, Copy, spool_call, spool_file, verify
from recording.uploader import run_uploader
from tests.audio import noise, write_wav

CALLS = 12
SECONDS = 120.0  # seconds of audio each: about 360 KB of Opus, 6 encryption chunks


def _upload(database_url: str, spool: Path, targets: tuple[S3Target, S3Target]) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    copies = (
        Copy("primary", targets[0], make_client(targets[0])),
        Copy("replica", targets[1], make_client(targets[1])),
    )
    sessions = session_factory(make_engine(database_url))
    run_uploader(sessions, spool, copies, lambda *a, **k: None, stop, forget_derived)


def _stored(engine: Engine) -> int:
    with session_factory(engine)() as session:
        count = session.scalar(
            select(func.count()).where(Recording.status == RecordingStatus.STORED)
        )
    return int(count or 0)


def _start(database_url: str, services: Services) -> Any:
    ctx = multiprocessing.get_context("spawn")
    targets = (services.copies[0].target, services.copies[1].target)
    process = ctx.Process(target=_upload, args=(database_url, services.spool, targets))
    process.start()
    return process


@pytest.mark.slow
def test_uploader_killed_mid_upload_loses_and_doubles_nothing(
    services: Services, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    capture = write_wav(
        tmp_path / "call.wav", [noise(SECONDS, 0.2, seed=1), noise(SECONDS, 0.2, seed=2)]
    )
    now = datetime.now(UTC)
    rows = []
    for i in range(CALLS):
        info = CallInfo(f"crash-{i}", "agent7", now)
        rows.append(
            spool_call(services.sessions, services.spool, services.keys, capture, info, 730, now)
        )

    first = _start(database_url, services)
    deadline = time.monotonic() + 120
    while _stored(engine) < 1:
        assert time.monotonic() < deadline and first.is_alive(), "the uploader stored nothing"
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)  # mid-run: no cleanup, maybe half an object sent
    first.join()
    at_kill = _stored(engine)
    assert 1 <= at_kill < CALLS, f"{at_kill} stored before the kill: not mid-upload"

    second = _start(database_url, services)
    try:
        while _stored(engine) < CALLS:
            assert time.monotonic() < deadline + 120 and second.is_alive(), "not all arrived"
            time.sleep(0.2)
    finally:
        second.terminate()
        second.join(15)

    for row in rows:
        assert not spool_file(services.spool, row.id).exists(), "spool kept a stored recording"
        checks = verify(services.sessions, services.copies, services.keys, row.id)
        assert all(check.ok for check in checks), checks  # both copies: hash and decryption
        for copy in services.copies:
            versions = list(
                copy.client.list_objects(
                    copy.target.bucket, prefix=row.object_key, include_version=True
                )
            )
            assert len(versions) == 1, f"{row.id} stored {len(versions)} times in {copy.name}"

"""Every recording stored exactly once, whatever fails, on both databases.

The faults that once left 25 WORM-locked extra copies, together: the object
store frozen (SIGSTOP) while requests are in flight and killed outright, the
uploader killed with SIGKILL and started again, while `dialguard recording
store` runs several times in parallel beside the uploader and calls keep
ending (spooled as the dialer does at hang-up). At the end every recording
is stored, verified, and exactly one version of it is in each bucket; none
is lost, none is left half-booked.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.recordings.erasure import forget_derived
from recording.db.engine import as_utc, make_engine, session_factory
from recording.embedded_s3 import EmbeddedS3
from recording.keys import FileKeyRing
from recording.models import Recording, RecordingStatus
from recording.storage import S3Target, ensure_bucket, make_client
from recording.store import CallInfo, Copy, spool_call, verify
from recording.uploader import backlog, run_uploader
from recording.versions import listed
from tests.audio import noise, write_wav
from tests.helpers import DIALGUARD

pytestmark = pytest.mark.slow

CALLS = 10
STORES = 6
STORE_TIMEOUT = 8.0  # `recording store --timeout`: the terminal is held no longer than this
#: The uploader's client timeout: short, so that every freeze cuts requests off mid-flight.
CLIENT_TIMEOUT = 3.0
SAID = re.compile(
    r"^([0-9a-f]{32}) (stored in both copies|spooled, not yet stored \(.+\); the uploader)"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """A SeaweedFS of this module's own: it is frozen and killed here."""
    s3 = EmbeddedS3(tmp_path_factory.mktemp("once-s3")).start()
    yield s3
    if s3.alive() and s3.pid:
        os.kill(s3.pid, signal.SIGCONT)
    s3.stop()


def _upload(database_url: str, spool: Path, targets: tuple[S3Target, S3Target]) -> None:
    """The uploader process, as `dialguard up` runs it (with short client timeouts)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    copies = tuple(
        Copy(name, target, make_client(target, timeout=CLIENT_TIMEOUT))
        for name, target in zip(("primary", "replica"), targets, strict=True)
    )
    sessions = session_factory(make_engine(database_url))
    run_uploader(
        sessions, spool, (copies[0], copies[1]), lambda *a, **k: None, stop, forget_derived
    )


class Uploader:
    def __init__(self, database_url: str, spool: Path, targets: tuple[S3Target, S3Target]):
        self.args = (database_url, spool, targets)
        self.process: Any = None
        self.kills = 0

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.process = ctx.Process(target=_upload, args=self.args)
        self.process.start()

    def kill_and_restart(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)  # no cleanup: a lease, a PUT in flight
        self.process.join()
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(30)


class Faults:
    """SIGSTOP, SIGCONT and SIGKILL for the store, counted."""

    def __init__(self, s3: EmbeddedS3) -> None:
        self.s3 = s3
        self.freezes = 0
        self.kills = 0

    def freeze(self, seconds: float, during: Any = None) -> None:
        assert self.s3.pid is not None
        os.kill(self.s3.pid, signal.SIGSTOP)
        self.freezes += 1
        try:
            time.sleep(seconds / 2)
            if during is not None:
                during()
            time.sleep(seconds / 2)
        finally:
            os.kill(self.s3.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.s3.kill()
        self.kills += 1
        time.sleep(1.0)
        self.s3.restart()  # as the supervisor does; same ports, same data


def test_freezes_and_kills_leave_exactly_one_verified_version_of_every_recording(
    store: EmbeddedS3, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    name = f"once-{secrets.token_hex(4)}"
    targets = (store.target(name), store.target(name + "-r"))
    for target in targets:
        ensure_bucket(make_client(target), target, 730)
    pair = (
        Copy("primary", targets[0], make_client(targets[0])),
        Copy("replica", targets[1], make_client(targets[1])),
    )
    data = tmp_path / "data"
    spool = data / "spool"
    keys = FileKeyRing(data / "keys" / "recording-keys.json")
    sessions = session_factory(engine)
    capture = write_wav(tmp_path / "call.wav", [noise(30.0, 0.2, seed=5), noise(30.0, 0.2, seed=6)])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIALGUARD_") and k not in ("LC_ALL", "LC_MESSAGES")
    } | {
        "LANG": "C.UTF-8",  # the CLI speaks the shell's language; SAID reads English
        "DIALGUARD_LANGUAGE": "en",
        "DIALGUARD_DATA_DIR": str(data),
        "DIALGUARD_DATABASE_URL": database_url,
        "DIALGUARD_S3_ENDPOINT": store.endpoint,
        "DIALGUARD_S3_ACCESS_KEY": targets[0].access_key,
        "DIALGUARD_S3_SECRET_KEY": targets[0].secret_key,
        "DIALGUARD_S3_BUCKET": targets[0].bucket,
        "DIALGUARD_S3_REPLICA_BUCKET": targets[1].bucket,
        "DIALGUARD_LOG_LEVEL": "ERROR",
    }

    calls_done = threading.Event()

    def calls() -> None:  # calls ending, as the dialer hands them over at hang-up
        for i in range(CALLS):
            now = datetime.now(UTC)
            spool_call(sessions, spool, keys, capture, CallInfo(f"call-{i}", "a7", now), 730, now)
            time.sleep(2.0)
        calls_done.set()

    said: list[tuple[int, str, float]] = []

    def one_store(i: int) -> None:
        started = time.monotonic()
        done = subprocess.run(
            [
                str(DIALGUARD),
                "recording",
                "store",
                str(capture),
                "--call-id",
                f"store-{i}",
                "--timeout",
                str(STORE_TIMEOUT),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        said.append((done.returncode, done.stdout + done.stderr, time.monotonic() - started))

    def stores() -> None:  # an operator importing recordings, three at a time
        for wave in range(STORES // 3):
            batch = [threading.Thread(target=one_store, args=(wave * 3 + j,)) for j in range(3)]
            for thread in batch:
                thread.start()
            for thread in batch:
                thread.join()

    uploader = Uploader(database_url, spool, targets)
    faults = Faults(store)
    background = [threading.Thread(target=calls), threading.Thread(target=stores)]
    uploader.start()
    for thread in background:
        thread.start()
    try:
        time.sleep(3)
        faults.freeze(6)
        uploader.kill_and_restart()
        time.sleep(2)
        faults.kill()
        faults.freeze(8, during=uploader.kill_and_restart)
        time.sleep(2)
        faults.kill()
        faults.freeze(5)
        uploader.kill_and_restart()
        for thread in background:
            thread.join(240)
        time.sleep(1)
        faults.freeze(4, during=uploader.kill_and_restart)  # the last stores may be running
        deadline = time.monotonic() + 150
        while backlog(sessions):
            assert time.monotonic() < deadline, f"{backlog(sessions)} never arrived"
            time.sleep(1)
    finally:
        uploader.stop()
    durations = [round(s[2], 1) for s in said]
    print(f"{faults.freezes} freezes, {faults.kills} store kills, {uploader.kills} uploader kills")
    print(f"each `recording store` took (s): {durations}")

    # Each `recording store` said where its recording was, and let go of the terminal in time.
    assert len(said) == STORES
    for code, out, took in said:
        assert code == 0 and SAID.match(out), out
        assert took < STORE_TIMEOUT + 30, f"held the terminal {took:.0f} s: {out}"
    with sessions() as session:
        rows = list(session.scalars(select(Recording)))
    assert sorted(r.call_id for r in rows) == sorted(
        [f"call-{i}" for i in range(CALLS)] + [f"store-{i}" for i in range(STORES)]
    ), "a recording was lost, or booked twice"
    for row in rows:
        assert row.status is RecordingStatus.STORED, (row.id, row.status, row.last_error)
        assert row.last_error is None, row.last_error
        assert row.stored_at is not None and as_utc(row.stored_at) >= as_utc(row.created_at)
        assert (row.primary_put_at, row.replica_put_at, row.lease_owner) == (None, None, None)
        for copy in pair:
            versions = [v.version_id for v in listed(copy, row.object_key)]
            assert versions == [getattr(row, f"{copy.name}_version")], (
                f"{row.call_id}: {len(versions)} versions in {copy.name}"
            )
        checks = verify(sessions, pair, keys, row.id)
        assert all(c.ok for c in checks), checks
    for copy in pair:  # and nothing else in the buckets: no orphan, no spare of any key
        everything = list(
            copy.client.list_objects(copy.target.bucket, recursive=True, include_version=True)
        )
        assert len(everything) == len(rows), f"{len(everything)} versions in {copy.name}"
    assert list(spool.glob("*.dgre*")) == [], "the spool kept a stored recording"

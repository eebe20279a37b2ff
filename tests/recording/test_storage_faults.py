"""Storage that answers but refuses: read-only, full, or a host clock it will not trust.

Each fault is made for real on a SeaweedFS of its own, the way an operator
or the store itself would make it: an S3 identity that may only read, a
bucket quota the store enforces, a process clock 20 minutes off (libfaketime).
In every case calls go on, recordings stay in the spool, the uploader says
why in plain words (log ALERT and its heartbeat), and once the store accepts
writes again every recording arrives.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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
from recording.models import Recording, RecordingStatus
from recording.retention import retain_until
from recording.storage import S3Target, ensure_bucket, make_client
from recording.store import CallInfo, Copy, spool_call, spool_file, verify
from recording.uploader import COMPONENT, StorageAlarm, backlog, run_uploader, upload_tick
from tests.audio import call_audio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """A SeaweedFS of these tests' own: quotas and identities set here touch nothing else."""
    s3 = EmbeddedS3(tmp_path_factory.mktemp("fault-s3")).start()
    yield s3
    s3.stop()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-audio")
    return call_audio(folder / "c.wav", [("agent", 0.2, "This call is recorded.")], 3.0)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyRing:
    return FileKeyRing(tmp_path / "keys" / "kek.json")


def _buckets(store: EmbeddedS3) -> tuple[str, str]:
    """A fresh primary and replica bucket, made by the store's admin as `dialguard up` does."""
    name = f"f-{secrets.token_hex(5)}"
    for bucket in (name, name + "-r"):
        target = store.target(bucket)
        ensure_bucket(make_client(target), target, 730)
    return name, name + "-r"


def _copies(
    store: EmbeddedS3, buckets: tuple[str, str], keys: tuple[str, str] | None = None
) -> Any:
    pair = []
    for name, bucket in zip(("primary", "replica"), buckets, strict=True):
        target = store.target(bucket)
        if keys is not None:
            target = S3Target(target.endpoint, keys[0], keys[1], bucket)
        pair.append(Copy(name, target, make_client(target, timeout=5.0, retries=0)))
    return pair[0], pair[1]


def _spool(
    sessions: sessionmaker[Session],
    spool: Path,
    keys: FileKeyRing,
    capture: Path,
    count: int,
    recorded_at: datetime | None = None,
) -> list[str]:
    """`count` finished calls, as the dialer hands them over at hang-up."""
    at = recorded_at or datetime.now(UTC)
    return [
        spool_call(sessions, spool, keys, capture, CallInfo(f"call-{i}", "agent7", at), 730, at).id
        for i in range(count)
    ]


def _spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir())


def _names(spool: Path, ids: list[str]) -> list[str]:
    return sorted(spool_file(spool, i).name for i in ids)


def _wait(what: str, check: Callable[[], bool], limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit:.0f} s")
        time.sleep(0.5)


def _all_verified(
    sessions: sessionmaker[Session], copies: tuple[Copy, Copy], keys: FileKeyRing, ids: list[str]
) -> None:
    for recording_id in ids:
        with sessions() as session:
            row = session.get(Recording, recording_id)
            assert row is not None and row.status is RecordingStatus.STORED
        assert [c.ok for c in verify(sessions, copies, keys, recording_id)] == [True, True]


def _alerts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT storage")]


def test_read_only_store_keeps_recordings_spooled_and_alerts_until_writes_return(
    store: EmbeddedS3,
    sessions: sessionmaker[Session],
    keys: FileKeyRing,
    capture: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    buckets = _buckets(store)
    user, access, secret = (
        f"dg{secrets.token_hex(4)}",
        f"AK{secrets.token_hex(8)}",
        secrets.token_urlsafe(24),
    )
    # The store's operator gives our key read access only (or a policy turns the bucket RO).
    store.shell(
        f"s3.configure -user={user} -access_key={access} -secret_key={secret} "
        f"-actions=Read,List -buckets={','.join(buckets)} -apply"
    )
    copies = _copies(store, buckets, (access, secret))
    spool = tmp_path / "spool"
    ids = _spool(sessions, spool, keys, capture, 2)

    stop = threading.Event()
    audited: list[Any] = []
    uploader = threading.Thread(
        target=run_uploader,
        args=(sessions, spool, copies, lambda *a: audited.append(a), stop, forget_derived),
        daemon=True,
    )
    uploader.start()
    try:

        def detail() -> str:
            with sessions() as session:
                live = live_instances(session, COMPONENT, datetime.now(UTC))
                return live[0].detail if live else ""

        _wait("the uploader's heartbeat shows the refusal", lambda: is_alert(detail()))
        said = detail()
        assert "storage refuses writes" in said and "AccessDenied" in said, said
        assert "read-only" in said and "2 waiting in spool" in said
        time.sleep(5)  # more ticks: still refused, still spooled, no flood of alerts
        assert sorted(p.name for p in spool.iterdir()) == sorted(
            spool_file(spool, i).name for i in ids
        )
        assert backlog(sessions) == 2
        with sessions() as session:
            rows = [session.get(Recording, i) for i in ids]
            assert all(r is not None and "AccessDenied" in (r.last_error or "") for r in rows)
        assert len(_alerts(caplog)) == 1, _alerts(caplog)

        # SeaweedFS files object-lock retention under Admin: Write alone is still refused.
        store.shell(
            f"s3.configure -user={user} -actions=Write,Admin -buckets={','.join(buckets)} -apply"
        )
        _wait("every recording arrives once writes are allowed", lambda: backlog(sessions) == 0)
        _wait("the heartbeat is plain again", lambda: not is_alert(detail()))
    finally:
        stop.set()
        uploader.join(30)
    assert list(spool.iterdir()) == []
    assert any("storage accepts uploads again" in r.getMessage() for r in caplog.records)
    _all_verified(sessions, copies, keys, ids)


def _enforce_quota(store: EmbeddedS3, bucket: str, over: bool) -> None:
    """Run the store's quota enforcement until it has (or has no longer) made `bucket` RO.

    The store learns bucket sizes from its volume servers' reports, which
    lag a few seconds behind the writes.
    """
    deadline = time.monotonic() + 90
    while True:
        store.shell("s3.bucket.quota.enforce -apply")
        conf = store.shell("fs.configure")
        locations = json.loads(conf[conf.index("{") :])["locations"]
        read_only = any(
            loc["locationPrefix"].rstrip("/").endswith(f"/{bucket}") and loc.get("readOnly")
            for loc in locations
        )
        if read_only == over:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the store did not {'apply' if over else 'lift'} the quota on {bucket}")
        time.sleep(2)


def test_full_store_keeps_recordings_spooled_until_space_is_given(
    store: EmbeddedS3,
    sessions: sessionmaker[Session],
    keys: FileKeyRing,
    capture: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    buckets = _buckets(store)
    copies = _copies(store, buckets)
    primary = copies[0]
    # 1 MB of quota, and 1.5 MB already used: the store turns the bucket read-only.
    store.shell(f"s3.bucket.quota -name={buckets[0]} -op=set -sizeMB=1")
    primary.client.put_object(
        buckets[0], "filler/old-archive.bin", _random_stream(1_500_000), 1_500_000
    )
    _enforce_quota(store, buckets[0], over=True)

    spool = tmp_path / "spool"
    ids = _spool(sessions, spool, keys, capture, 2)
    alarm = StorageAlarm()
    status = upload_tick(sessions, spool, copies, alarm=alarm)
    assert is_alert(status), status
    assert "storage refuses writes" in status and "full, over its quota" in status, status
    assert "2 waiting in spool" in status
    assert len(_alerts(caplog)) == 1 and buckets[0] in _alerts(caplog)[0]
    assert _spooled(spool) == _names(spool, ids)
    with sessions() as session:  # the replica took its copies; the primary's wait
        for recording_id in ids:
            row = session.get(Recording, recording_id)
            assert row is not None and row.status is RecordingStatus.SPOOLED
            assert row.replica_sha256 and not row.primary_sha256

    store.shell(f"s3.bucket.quota -name={buckets[0]} -op=set -sizeMB=100")
    _enforce_quota(store, buckets[0], over=False)
    status = upload_tick(sessions, spool, copies, alarm=alarm)
    assert status == "0 waiting in spool", status
    assert list(spool.iterdir()) == []
    _all_verified(sessions, copies, keys, ids)


def _random_stream(size: int) -> io.BytesIO:
    return io.BytesIO(os.urandom(size))


# --- clock skew ------------------------------------------------------------------------------

_UPLOADER_ONCE = """
import json, logging, sys
from pathlib import Path
from recording.db.engine import make_engine, session_factory
from recording.errors import StorageError
from recording.storage import S3Target, check_bucket, make_client
from recording.store import Copy
from recording.uploader import StorageAlarm, upload_tick

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
conf = json.loads(sys.argv[1])
copies = tuple(
    Copy(name, t := S3Target(**target), make_client(t, timeout=5.0, retries=0))
    for name, target in conf["copies"]
)
sessions = session_factory(make_engine(conf["database"]))
print(upload_tick(sessions, Path(conf["spool"]), copies, alarm=StorageAlarm()))
try:  # what /healthz and `dialguard doctor` say of the same store
    check_bucket(copies[0].client, copies[0].target)
except StorageError as exc:
    print(f"{exc} - {exc.hint}")
"""


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is missing: make apt (or apt-get install faketime)")
    return found[0]


@pytest.mark.parametrize("offset", ["-20m", "+20m"])
def test_a_skewed_host_clock_is_named_and_the_spool_waits_for_the_right_time(
    store: EmbeddedS3,
    database_url: str,
    engine: Engine,
    keys: FileKeyRing,
    capture: Path,
    tmp_path: Path,
    offset: str,
) -> None:
    """The uploader runs in a process whose clock is 20 minutes off (libfaketime)."""
    sessions = session_factory(engine)
    buckets = _buckets(store)
    copies = _copies(store, buckets)
    spool = tmp_path / "spool"
    recorded_at = datetime.now(UTC) - timedelta(minutes=3)
    ids = _spool(sessions, spool, keys, capture, 2, recorded_at)
    conf = {
        "database": database_url,
        "spool": str(spool),
        "copies": [
            [
                c.name,
                {
                    "endpoint": c.target.endpoint,
                    "access_key": c.target.access_key,
                    "secret_key": c.target.secret_key,
                    "bucket": c.target.bucket,
                },
            ]
            for c in copies
        ],
    }
    env = dict(
        os.environ,
        LD_PRELOAD=_libfaketime(),
        FAKETIME=offset,
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        PYTHONPATH=str(ROOT),
    )
    skewed = subprocess.run(
        [sys.executable, "-c", _UPLOADER_ONCE, json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert skewed.returncode == 0, skewed.stderr[-2000:]
    side = "behind" if offset.startswith("-") else "ahead"
    plain = f"host clock differs from storage by ~20 min (host {side})"
    tick, health = skewed.stdout.splitlines()
    assert tick.startswith(f"ALERT: {plain}") and "; 2 waiting in spool, oldest" in tick, tick
    assert all(f"{c.target.label} refuses" in tick for c in copies), "names every bucket down"
    assert "refused our signed requests" in health and plain in health, health
    assert "NTP" in health
    assert f"ALERT storage refuses recordings: {plain}" in skewed.stderr, skewed.stderr[-2000:]
    assert _spooled(spool) == _names(spool, ids)
    with sessions() as session:
        for recording_id in ids:
            row = session.get(Recording, recording_id)
            assert row is not None and row.status is RecordingStatus.SPOOLED
            assert plain in (row.last_error or "")

    # The clock is right again (this process): the same spool goes up, nothing lost.
    assert upload_tick(sessions, spool, copies) == "0 waiting in spool"
    assert list(spool.iterdir()) == []
    _all_verified(sessions, copies, keys, ids)
    expected = retain_until(recorded_at, 730)  # from the recording, not from any clock now
    for copy in copies:
        with sessions() as session:
            row = session.get(Recording, ids[0])
            assert row is not None
            version = getattr(row, f"{copy.name}_version")
        retention = copy.client.get_object_retention(
            copy.target.bucket, row.object_key, version_id=version
        )
        assert retention is not None and retention.retain_until_date == expected

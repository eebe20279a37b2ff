"""One object version per recording per bucket, checked against what SeaweedFS really does.

In a WORM-locked bucket a second version cannot be deleted for years, so it
must not be made: the store's conditional PUT is what the design rests on,
and these tests keep checking that it holds (refused when the key exists,
atomic among concurrent writers), that the HTTP client never re-sends a
PUT, that an upload whose outcome was unknown is adopted instead of sent
again, and that a spare version, should one exist, fails `verify` and is
deleted by the end-of-retention job.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE, Tags
from minio.retention import Retention
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.recordings.erasure import forget_derived
from api.web.services import Services
from recording.db.engine import as_utc, session_factory
from recording.embedded_s3 import EmbeddedS3
from recording.keys import FileKeyRing
from recording.lifecycle import expire
from recording.models import Recording, RecordingStatus
from recording.storage import S3Target, ensure_bucket, make_client
from recording.store import CallInfo, Copy, object_tags, spool_call, upload_pending, verify
from recording.versions import SHA_META, AlreadyStored, put_once, stored
from tests.audio import noise, write_wav


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("versions")
    # 40 s of noise: about 120 KB of Opus, a body that takes a moment to store
    return write_wav(folder / "c.wav", [noise(40.0, 0.2, seed=3), noise(40.0, 0.2, seed=4)])


def _row(sessions: sessionmaker[Session], recording_id: str) -> Recording:
    with sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return row


def _spool(services: Services, capture: Path, call_id: str) -> Recording:
    now = datetime.now(UTC)
    return spool_call(
        services.sessions,
        services.spool,
        services.keys,
        capture,
        CallInfo(call_id, "agent7", now),
        730,
        now,
    )


# --- what the store does ----------------------------------------------------------------------


def test_storage_refuses_a_second_conditional_put_and_keeps_one_of_many_at_once(
    copies: tuple[Copy, Copy], tmp_path: Path
) -> None:
    primary = copies[0]
    body = tmp_path / "body"
    body.write_bytes(os.urandom(300_000))
    lock = Retention(COMPLIANCE, datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
    first = put_once(primary, "once/a", body, "a" * 64, lock, _tags())
    with pytest.raises(AlreadyStored):
        put_once(primary, "once/a", body, "a" * 64, lock, _tags())
    assert [v.version_id for v in stored(primary, "once/a")] == [first]

    start = threading.Barrier(12)
    outcomes: list[str] = []

    def race() -> None:
        start.wait()
        try:
            put_once(primary, "once/b", body, "b" * 64, lock, _tags())
            outcomes.append("stored")
        except AlreadyStored:
            outcomes.append("refused")

    threads = [threading.Thread(target=race) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["refused"] * 11 + ["stored"]
    assert len(stored(primary, "once/b")) == 1


def _tags() -> Tags:
    tags = Tags.new_object_tags()
    tags["dialguard-retention-days"] = "1"
    return tags


def _silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A TCP server that accepts and reads but never answers: a frozen store, seen by a client."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


def test_the_http_client_retries_reads_but_never_sends_a_put_twice() -> None:
    server, accepted = _silent_server()
    try:
        port = server.getsockname()[1]
        target = S3Target(f"127.0.0.1:{port}", "ak", "sk", "bucket")
        client = make_client(target, timeout=1.0, retries=2)
        with pytest.raises(Exception, match="timed out"):
            client._put_object("bucket", "key", b"x" * 1000, {})
        time.sleep(0.5)
        assert len(accepted) == 1, "the PUT was sent again after its read timeout"
        with pytest.raises(Exception, match="timed out"):
            client.stat_object("bucket", "key")
        time.sleep(0.5)
        assert len(accepted) == 4  # a read is safe to repeat: 1 + 2 retries
    finally:
        server.close()
        for conn in accepted:
            conn.close()


# --- the uploader on top of it ------------------------------------------------------------------


def test_an_upload_whose_outcome_was_unknown_is_adopted_not_sent_again(
    services: Services, capture: Path
) -> None:
    """The client saw a timeout, but storage kept the object: the next round finds it."""
    row = _spool(services, capture, "landed-late")
    primary = services.copies[0]
    # What the earlier attempt did: marked, sent, and (unknown to it) stored.
    with services.sessions() as session:
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(primary_put_at=datetime.now(UTC), upload_attempts=1)
        )
        session.commit()
    landed = put_once(
        primary,
        row.object_key,
        services.spool / f"{row.id}.dgre",
        row.ciphertext_sha256,
        Retention(COMPLIANCE, as_utc(row.retain_until)),
        object_tags(row),
    )
    report = upload_pending(services.sessions, services.spool, services.copies, row.created_at)
    assert report.stored == [row.id], report
    after = _row(services.sessions, row.id)
    assert after.primary_version == landed and after.primary_put_at is None
    assert after.last_error is None and after.lease_owner is None
    for copy in services.copies:
        assert len(stored(copy, row.object_key)) == 1
    assert [c.ok for c in verify(services.sessions, services.copies, services.keys, row.id)] == [
        True,
        True,
    ]


def test_an_unknown_outcome_that_never_landed_is_sent_once_after_settling(
    services: Services, capture: Path
) -> None:
    row = _spool(services, capture, "never-landed")
    with services.sessions() as session:
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(primary_put_at=datetime.now(UTC), replica_put_at=datetime.now(UTC))
        )
        session.commit()
    started = time.monotonic()
    report = upload_pending(services.sessions, services.spool, services.copies, row.created_at)
    assert report.stored == [row.id]
    assert time.monotonic() - started >= 2 * 3.0  # looked twice, SETTLE_S apart, per copy
    for copy in services.copies:
        assert len(stored(copy, row.object_key)) == 1


def test_a_spare_version_fails_verify_and_the_end_of_retention_deletes_every_version(
    services: Services, capture: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit_log: list[object] = []
    ids = []
    for call_id, spare_lock in (("spare-short", 4), ("spare-long", 600)):
        row = _spool(services, capture, call_id)
        now = datetime.now(UTC)
        until = (now + timedelta(seconds=4)).replace(microsecond=0)
        with services.sessions() as session:  # as if two years had passed (see test_lifecycle)
            session.execute(
                update(Recording).where(Recording.id == row.id).values(retain_until=until)
            )
            session.commit()
        assert upload_pending(services.sessions, services.spool, services.copies, now).stored
        # A store that ignored the condition kept a second copy (what SeaweedFS did to
        # re-sent PUTs before): same bytes, same hash, its own lock.
        primary = services.copies[0]
        data = _download(primary, _row(services.sessions, row.id))
        primary.client.put_object(
            primary.target.bucket,
            row.object_key,
            io.BytesIO(data),
            len(data),
            metadata={SHA_META: row.ciphertext_sha256},
            retention=Retention(
                COMPLIANCE, (now + timedelta(seconds=spare_lock)).replace(microsecond=0)
            ),
        )
        ids.append(row.id)

    checks = verify(services.sessions, services.copies, services.keys, ids[0])
    assert [c.ok for c in checks] == [False, True]
    assert "1 extra version(s)" in checks[0].detail, checks[0].detail

    time.sleep(5)
    caplog.set_level(logging.WARNING)
    done = expire(
        services.sessions,
        services.copies,
        datetime.now(UTC),
        lambda *a: audit_log.append(a),
        forget_derived,
    )
    assert [d.recording_id for d in done] == [ids[0]]
    short, long = _row(services.sessions, ids[0]), _row(services.sessions, ids[1])
    for copy in services.copies:
        assert stored(copy, short.object_key) == [], "a version outlived the end of retention"
    assert short.status is RecordingStatus.DELETED
    # The spare locked longer cannot go yet: the job says so and keeps the recording.
    assert long.status is RecordingStatus.STORED and long.wrapped_dek is not None
    refused = [r for r in caplog.records if "expiry refused by storage" in r.getMessage()]
    assert refused and getattr(refused[0], "recording", None) == ids[1]


def _download(copy: Copy, row: Recording) -> bytes:
    response = copy.client.get_object(
        copy.target.bucket, row.object_key, version_id=getattr(row, f"{copy.name}_version")
    )
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


# --- a store frozen mid-upload ----------------------------------------------------------------


@pytest.fixture(scope="module")
def freezable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    s3 = EmbeddedS3(tmp_path_factory.mktemp("freeze-s3")).start()
    yield s3
    if s3.pid:
        os.kill(s3.pid, signal.SIGCONT)
    s3.stop()


def test_freezes_during_uploads_leave_one_version_of_each_recording(
    freezable: EmbeddedS3, engine: Engine, capture: Path, tmp_path: Path
) -> None:
    """The fault that made copies: storage frozen while PUTs are in flight, clients timing out.

    Each round starts uploading and freezes the store a moment later, longer
    than the client's 2 s timeout; then storage runs again and the PUTs it
    held complete. The next rounds must adopt those, not add versions.
    """
    sessions = session_factory(engine)
    keys = FileKeyRing(tmp_path / "keys" / "kek.json")
    spool = tmp_path / "spool"
    name = f"fz-{secrets.token_hex(5)}"
    pair = []
    for role, bucket in (("primary", name), ("replica", name + "-r")):
        target = freezable.target(bucket)
        ensure_bucket(make_client(target), target, 730)
        pair.append(Copy(role, target, make_client(target, timeout=2.0)))
    copies = (pair[0], pair[1])
    now = datetime.now(UTC)
    ids = [
        spool_call(sessions, spool, keys, capture, CallInfo(f"fz-{i}", "a7", now), 730, now).id
        for i in range(8)
    ]
    assert freezable.pid is not None
    cut: list[int] = []

    def upload_round() -> None:
        cut.append(len(upload_pending(sessions, spool, copies, now, limit=3).errors))

    for delay in (0.05, 0.15, 0.3, 0.5):
        uploading = threading.Thread(target=upload_round)
        uploading.start()
        time.sleep(delay)
        os.kill(freezable.pid, signal.SIGSTOP)
        time.sleep(5)
        os.kill(freezable.pid, signal.SIGCONT)
        uploading.join(120)
    deadline = time.monotonic() + 120
    while upload_pending(sessions, spool, copies, now).waiting:
        assert time.monotonic() < deadline, "not all recordings arrived"
        time.sleep(1)
    for recording_id in ids:
        row = _row(sessions, recording_id)
        assert row.status is RecordingStatus.STORED and row.last_error is None
        for copy in copies:
            versions = stored(copy, row.object_key)
            assert [v.version_id for v in versions] == [getattr(row, f"{copy.name}_version")], (
                f"{recording_id} has {len(versions)} versions in {copy.name}"
            )
        assert all(c.ok for c in verify(sessions, copies, keys, recording_id))
    assert sum(cut), "no upload was cut off: the freezes missed every request"

"""Recordings end to end on real storage: encrypted, two verified WORM copies, never lost."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.error import S3Error
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.web.services import Services
from recording.db.engine import session_factory
from recording.embedded_s3 import EmbeddedS3
from recording.encode import encode_call
from recording.errors import RecordingError
from recording.keys import FileKeyRing, KeyWrapper
from recording.models import Recording, RecordingStatus
from recording.storage import ensure_bucket, make_client
from recording.store import (
    CallInfo,
    Copy,
    RecordingUnavailable,
    fetch,
    spool_call,
    spool_file,
    upload_pending,
    verify,
)
from tests.audio import call_audio

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("capture")
    return call_audio(
        folder / "call.wav",
        [("agent", 0.2, "This call is recorded for quality."), ("debtor", 3.0, "Okay.")],
        seconds=5.0,
    )


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyRing:
    return FileKeyRing(tmp_path / "keys" / "kek.json")


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _parts(
    services: Services,
) -> tuple[sessionmaker[Session], Path, tuple[Copy, Copy], KeyWrapper]:
    return services.sessions, services.spool, services.copies, services.keys


def _info(call_id: str = "call-1") -> CallInfo:
    return CallInfo(call_id=call_id, agent="agent7", recorded_at=NOW, debtor_id="D-1001")


def test_a_call_ends_as_two_encrypted_locked_copies(
    services: Services, capture: Path, tmp_path: Path
) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    assert row.status is RecordingStatus.SPOOLED
    assert [p.name for p in spool.iterdir()] == [f"{row.id}.dgre"]  # no plaintext left behind

    report = upload_pending(sessions, spool, copies, NOW)
    assert report.stored == [row.id] and report.errors == []
    assert list(spool.iterdir()) == []

    expected = encode_call(capture, tmp_path / "expected.ogg").path.read_bytes()
    pcm = _pcm(capture)
    for copy in copies:
        raw = copy.client.get_object(copy.target.bucket, row.object_key).read()
        assert b"OggS" not in raw and b"OpusHead" not in raw
        assert pcm[1000:1032] not in raw
        retention = copy.client.get_object_retention(copy.target.bucket, row.object_key)
        assert retention is not None
        assert retention.retain_until_date >= NOW + timedelta(days=730)
        with sessions() as session:
            stored = session.get(Recording, row.id)
            assert stored is not None
            version = getattr(stored, f"{copy.name}_version")
        with pytest.raises(S3Error) as refused:
            copy.client.remove_object(copy.target.bucket, row.object_key, version_id=version)
        assert refused.value.code == "AccessDenied"

    out = io.BytesIO()
    assert fetch(sessions, spool, copies, keys, row.id, out) == "primary"
    assert out.getvalue()[:4] == b"OggS"
    assert len(out.getvalue()) == len(expected)  # same encoding of the same call
    assert [c.ok for c in verify(sessions, copies, keys, row.id)] == [True, True]


def _pcm(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        frames: bytes = wav.readframes(wav.getnframes())
    return frames


def test_storage_outage_keeps_recordings_in_the_spool_until_it_returns(
    sessions: sessionmaker[Session], keys: FileKeyRing, capture: Path, tmp_path: Path
) -> None:
    store = EmbeddedS3(tmp_path / "s3").start()
    try:
        copies = []
        for name in ("primary", "replica"):
            target = store.target(f"outage-{name}")
            ensure_bucket(make_client(target), target, 730)
            copies.append(Copy(name, target, make_client(target, timeout=2.0, retries=0)))
        pair = (copies[0], copies[1])
        spool = tmp_path / "spool"
        ids = [
            spool_call(sessions, spool, keys, capture, _info(f"c{i}"), 730, NOW).id
            for i in range(3)
        ]
        upload_pending(sessions, spool, pair, NOW, limit=1)  # one goes up before the outage
        store.stop()
        report = upload_pending(sessions, spool, pair, NOW)
        assert report.stored == [] and report.waiting == 2
        assert all("unreachable" in e for e in report.errors)
        assert len(list(spool.iterdir())) == 2  # nothing lost while storage is down
        store.start()  # same directory, same ports and credentials
        stored: list[str] = []
        deadline = time.monotonic() + 60
        while len(stored) < 2 and time.monotonic() < deadline:  # as the uploader's ticks do
            stored += upload_pending(sessions, spool, pair, NOW).stored
        assert len(stored) == 2
        assert list(spool.iterdir()) == []
        for recording_id in ids:
            assert [c.ok for c in verify(sessions, pair, keys, recording_id)] == [True, True]
            key = _row(sessions, recording_id).object_key
            versions = list(
                pair[0].client.list_objects("outage-primary", prefix=key, include_version=True)
            )
            assert len(versions) == 1  # arrived once
    finally:
        store.stop()


def _row(sessions: sessionmaker[Session], recording_id: str) -> Recording:
    with sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return row


def test_crash_between_commit_and_rename_is_repaired(services: Services, capture: Path) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    final = spool_file(spool, row.id)
    final.rename(final.with_name(final.name + ".part"))
    assert upload_pending(sessions, spool, copies, NOW).stored == [row.id]


def test_upload_cut_off_after_storage_kept_it_is_not_sent_twice(
    services: Services, capture: Path
) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    primary = copies[0]
    with spool_file(spool, row.id).open("rb") as data:  # what a killed uploader got through
        primary.client.put_object(
            primary.target.bucket,
            row.object_key,
            data,
            row.ciphertext_size,
            metadata={"sha256": row.ciphertext_sha256},
        )
    assert upload_pending(sessions, spool, copies, NOW).stored == [row.id]
    versions = list(
        primary.client.list_objects(
            primary.target.bucket, prefix=row.object_key, include_version=True
        )
    )
    assert len(versions) == 1


def test_tampered_copy_is_detected_and_the_replica_serves(
    services: Services, capture: Path
) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    upload_pending(sessions, spool, copies, NOW)
    primary = copies[0]
    forged = primary.client.put_object(
        primary.target.bucket, row.object_key, io.BytesIO(b"x" * 100), 100
    )
    with sessions() as session:  # storage now hands out other bytes for the primary
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(primary_version=forged.version_id)
        )
        session.commit()
    checks = verify(sessions, copies, keys, row.id)
    assert [c.ok for c in checks] == [False, True]
    out = io.BytesIO()
    assert fetch(sessions, spool, copies, keys, row.id, out) == "replica"
    assert out.getvalue()[:4] == b"OggS"


def test_no_intact_copy_is_a_clear_error(services: Services, capture: Path) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    upload_pending(sessions, spool, copies, NOW)
    with sessions() as session:
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(primary_sha256="0" * 64, replica_sha256="1" * 64)
        )
        session.commit()
    with pytest.raises(RecordingUnavailable, match="no intact copy"):
        fetch(sessions, spool, copies, keys, row.id, io.BytesIO())


def test_spooled_recording_plays_from_the_spool(services: Services, capture: Path) -> None:
    sessions, spool, copies, keys = _parts(services)
    row = spool_call(sessions, spool, keys, capture, _info(), 730, NOW)
    out = io.BytesIO()
    assert fetch(sessions, spool, copies, keys, row.id, out) == "spool"
    assert out.getvalue()[:4] == b"OggS"


def test_one_recording_per_call(
    sessions: sessionmaker[Session], keys: FileKeyRing, capture: Path, tmp_path: Path
) -> None:
    spool_call(sessions, tmp_path / "spool", keys, capture, _info(), 730, NOW)
    with pytest.raises(RecordingError, match="already has a recording"):
        spool_call(sessions, tmp_path / "spool", keys, capture, _info(), 730, NOW)


@pytest.fixture(autouse=True)
def _no_leftover_parts(tmp_path: Path) -> Iterator[None]:
    yield
    spool = tmp_path / "spool"
    assert not list(spool.rglob("*.ogg")) if spool.exists() else True, "plaintext in the spool"

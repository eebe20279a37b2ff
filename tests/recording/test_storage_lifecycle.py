"""Storage's lifecycle expiry on real SeaweedFS: tags follow each recording's own retention.

A lifecycle Expiration in a versioned, locked bucket does not delete: it
covers the object with a delete marker, and a plain GET then answers 404. So
each object carries its retention class as a tag, holds and longer retention
re-tag it, and the rules a bucket holds are checked against those tags.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio

from api.audit.chain import audit_to
from api.recordings.erasure import forget_derived
from api.web.services import Services
from recording.lifecycle import expire, extend_retention, set_legal_hold
from recording.models import Recording
from recording.retention import retain_until
from recording.storage_rules import RETENTION_TAG
from recording.store import CallInfo, Copy, spool_call, upload_pending
from tests.audio import call_audio

RECORDED = datetime(2026, 11, 24, 9, 30, 12, 345_678, tzinfo=UTC)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("storage-lifecycle")
    return call_audio(folder / "c.wav", [("agent", 0.2, "This call is recorded.")], 3.0)


def _stored(services: Services, capture: Path, call_id: str, days: int, upload_at: datetime) -> str:
    row = spool_call(
        services.sessions,
        services.spool,
        services.keys,
        capture,
        CallInfo(call_id, "agent7", RECORDED, client_id="bank-b"),
        days,
        RECORDED,
    )
    report = upload_pending(services.sessions, services.spool, services.copies, upload_at)
    assert report.stored == [row.id], report.errors
    return row.id


def _row(services: Services, recording_id: str) -> Recording:
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return row


def _tag(copy: Copy, row: Recording) -> str | None:
    tags = copy.client.get_object_tags(
        copy.target.bucket, row.object_key, version_id=getattr(row, f"{copy.name}_version")
    )
    if tags is None:
        return None
    value: str | None = tags.get(RETENTION_TAG)
    return value


def _rule_ids(client: Minio, bucket: str) -> set[str]:
    config = client.get_bucket_lifecycle(bucket)
    return {rule.rule_id or "" for rule in (config.rules if config is not None else [])}


def test_objects_carry_their_retention_class_and_its_rule_exists(
    services: Services, capture: Path
) -> None:
    """A client's 1095-day recording in buckets prepared for 730 days: its own rule is added."""
    for copy in services.copies:
        assert "dialguard-1095d" not in _rule_ids(copy.client, copy.target.bucket)
    default = _stored(services, capture, "c-730", 730, RECORDED)
    longer = _stored(services, capture, "c-1095", 1095, RECORDED)
    for copy in services.copies:
        assert _tag(copy, _row(services, default)) == "730"
        assert _tag(copy, _row(services, longer)) == "1095"
        assert {"dialguard-730d", "dialguard-1095d"} <= _rule_ids(copy.client, copy.target.bucket)


def test_retention_is_counted_from_recorded_at_not_from_the_upload(
    services: Services, capture: Path
) -> None:
    """Uploaded three days late (storage was away): still kept until recorded_at + 730 days."""
    recording_id = _stored(services, capture, "late", 730, RECORDED + timedelta(days=3))
    row = _row(services, recording_id)
    expected = retain_until(RECORDED, 730)
    assert row.retain_until.replace(tzinfo=UTC) == expected
    for copy in services.copies:
        retention = copy.client.get_object_retention(
            copy.target.bucket, row.object_key, version_id=getattr(row, f"{copy.name}_version")
        )
        assert retention is not None and retention.retain_until_date == expected


def test_a_hold_and_a_longer_retention_retag_both_copies(services: Services, capture: Path) -> None:
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    now = datetime.now(UTC)
    recording_id = _stored(services, capture, "dispute", 730, now)
    sessions, copies = services.sessions, services.copies

    set_legal_hold(sessions, copies, recording_id, True, "sup1", "court order 7", audit)
    assert [_tag(c, _row(services, recording_id)) for c in copies] == ["hold", "hold"]

    set_legal_hold(sessions, copies, recording_id, False, "sup1", "order lifted", audit)
    assert [_tag(c, _row(services, recording_id)) for c in copies] == ["730", "730"]

    row = _row(services, recording_id)
    extend_retention(
        sessions,
        copies,
        recording_id,
        row.retain_until.replace(tzinfo=UTC) + timedelta(days=365),
        "admin1",
        "client bank-b asks for three years",
        audit,
    )
    assert [_tag(c, _row(services, recording_id)) for c in copies] == ["1095", "1095"]


def test_expiry_job_finishes_a_recording_storage_already_removed(
    services: Services, capture: Path
) -> None:
    """If storage's backstop got there first, the job still erases the key and leaves proof."""
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    now = datetime.now(UTC)
    row = spool_call(
        services.sessions,
        services.spool,
        services.keys,
        capture,
        CallInfo("gone", "agent7", now),
        730,
        now,
    )
    with services.sessions() as session:  # locked only a few seconds, as if two years had passed
        stored = session.get(Recording, row.id)
        assert stored is not None
        stored.retain_until = (now + timedelta(seconds=2)).replace(microsecond=0)
        session.commit()
    assert upload_pending(services.sessions, services.spool, services.copies, now).stored
    row = _row(services, row.id)
    time.sleep(3)
    primary = services.copies[0]
    primary.client.remove_object(primary.target.bucket, row.object_key, row.primary_version)
    done = expire(services.sessions, services.copies, datetime.now(UTC), audit, forget_derived)
    assert [d.recording_id for d in done] == [row.id]
    assert _row(services, row.id).wrapped_dek is None

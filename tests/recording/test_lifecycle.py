"""Legal holds, longer retention, and the end of retention, on real WORM storage."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy import select, update

from api.audit.chain import AuditEntry, audit_to, verify
from api.recordings.erasure import forget_derived as forget
from api.web.services import Services
from recording.lifecycle import expire, extend_retention, set_legal_hold
from recording.models import Recording, RecordingStatus
from recording.retention import RetentionError
from recording.store import CallInfo, RecordingUnavailable, fetch, spool_call, upload_pending
from tests.audio import call_audio


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lifecycle")
    return call_audio(folder / "c.wav", [("agent", 0.2, "This call is recorded.")], 3.0)


def _stored(services: Services, capture: Path, call_id: str, lock_seconds: float | None) -> str:
    """A stored recording; with lock_seconds, locked only that long (as if two years had passed)."""
    now = datetime.now(UTC)
    row = spool_call(
        services.sessions,
        services.spool,
        services.keys,
        capture,
        CallInfo(call_id, "agent7", now),
        730,
        now,
    )
    if lock_seconds is not None:
        with services.sessions() as session:
            until = (now + timedelta(seconds=lock_seconds)).replace(microsecond=0)
            session.execute(
                update(Recording).where(Recording.id == row.id).values(retain_until=until)
            )
            session.commit()
    assert upload_pending(services.sessions, services.spool, services.copies, now).stored
    return row.id


def _row(services: Services, recording_id: str) -> Recording:
    with services.sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return row


def test_expiry_deletes_both_copies_erases_the_key_and_leaves_proof(
    services: Services, capture: Path
) -> None:
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    ending = _stored(services, capture, "ends", lock_seconds=3)
    held = _stored(services, capture, "held", lock_seconds=3)
    kept = _stored(services, capture, "kept", lock_seconds=None)
    set_legal_hold(services.sessions, services.copies, held, True, "sup1", "court order 7", audit)
    assert expire(services.sessions, services.copies, datetime.now(UTC), audit, forget) == []
    time.sleep(4)
    done = expire(services.sessions, services.copies, datetime.now(UTC), audit, forget)
    assert [d.recording_id for d in done] == [ending]
    row = _row(services, ending)
    assert row.status is RecordingStatus.DELETED and row.wrapped_dek is None
    for copy in services.copies:
        with pytest.raises(S3Error):
            copy.client.stat_object(
                copy.target.bucket, row.object_key, version_id=getattr(row, f"{copy.name}_version")
            )
    with pytest.raises(RecordingUnavailable, match="deleted at the end of its retention"):
        fetch(
            services.sessions, services.spool, services.copies, services.keys, ending, io.BytesIO()
        )
    for survivor in (held, kept):
        assert _row(services, survivor).status is RecordingStatus.STORED
    with services.sessions() as session:
        proof = session.scalar(select(AuditEntry).where(AuditEntry.action == "recording-deleted"))
        assert proof is not None and proof.target == ending
        assert row.ciphertext_sha256 in proof.detail
        assert verify(session) == []


def test_retention_only_grows_not_even_an_admin_can_shorten_it(
    services: Services, capture: Path
) -> None:
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    rid = _stored(services, capture, "long", lock_seconds=None)
    before = _row(services, rid).retain_until
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1095)
    assert (
        extend_retention(
            services.sessions,
            services.copies,
            rid,
            later,
            "admin1",
            "client requires 3 years",
            audit,
        )
        == later
    )
    for copy in services.copies:
        retention = copy.client.get_object_retention(
            copy.target.bucket, _row(services, rid).object_key
        )
        assert retention is not None and retention.retain_until_date >= later
    with pytest.raises(RetentionError, match="can only be extended"):
        extend_retention(
            services.sessions,
            services.copies,
            rid,
            later - timedelta(days=400),
            "admin1",
            "mistake",
            audit,
        )
    row = _row(services, rid)
    assert row.retain_until != before
    primary = services.copies[0]
    with pytest.raises(S3Error):  # and storage itself refuses, whoever asks
        primary.client.set_object_retention(
            primary.target.bucket,
            row.object_key,
            Retention(COMPLIANCE, datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)),
            row.primary_version,
        )


def test_legal_hold_is_set_on_both_copies_and_audited(services: Services, capture: Path) -> None:
    audit = audit_to(services.sessions, lambda: datetime.now(UTC))
    rid = _stored(services, capture, "hold", lock_seconds=None)
    set_legal_hold(services.sessions, services.copies, rid, True, "sup1", "dispute 12", audit)
    row = _row(services, rid)
    for copy in services.copies:
        assert copy.client.is_object_legal_hold_enabled(
            copy.target.bucket, row.object_key, getattr(row, f"{copy.name}_version")
        )
    set_legal_hold(services.sessions, services.copies, rid, False, "sup1", "dispute closed", audit)
    assert not _row(services, rid).legal_hold
    with services.sessions() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions == ["legal-hold-on", "legal-hold-off"]

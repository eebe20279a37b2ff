"""Buckets with object lock on a real SeaweedFS, and clear errors when S3 cannot be used."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.objectlockconfig import DAYS
from minio.retention import Retention

from recording.embedded_s3 import EmbeddedS3
from recording.errors import BucketMissing, ObjectLockMissing, StorageUnavailable
from recording.storage import S3Target, check_bucket, ensure_bucket, make_client, split_endpoint
from tests.helpers import free_port


def test_ensure_bucket_creates_a_compliance_locked_bucket(locked_target: S3Target) -> None:
    client = make_client(locked_target)
    config = client.get_object_lock_config(locked_target.bucket)
    assert (config.mode, config.duration, config.duration_unit) == (COMPLIANCE, 730, DAYS)
    ensure_bucket(client, locked_target, 730)  # idempotent on an existing locked bucket


def test_locked_object_version_cannot_be_deleted(locked_target: S3Target) -> None:
    client = make_client(locked_target)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=730)
    written = client.put_object(
        locked_target.bucket,
        "call-1.ogg.enc",
        io.BytesIO(b"ciphertext"),
        10,
        retention=Retention(COMPLIANCE, until),
    )
    with pytest.raises(S3Error) as refused:
        client.remove_object(locked_target.bucket, "call-1.ogg.enc", version_id=written.version_id)
    assert refused.value.code == "AccessDenied"
    assert client.get_object(locked_target.bucket, "call-1.ogg.enc").read() == b"ciphertext"


def test_bucket_without_object_lock_is_refused(seaweed: EmbeddedS3, s3_client: Minio) -> None:
    s3_client.make_bucket("plain-bucket-no-lock")
    target = seaweed.target("plain-bucket-no-lock")
    with pytest.raises(ObjectLockMissing, match="no object lock") as missing:
        check_bucket(s3_client, target)
    assert "DIALGUARD_S3_BUCKET" in missing.value.hint
    with pytest.raises(ObjectLockMissing):
        ensure_bucket(s3_client, target, 730)


def test_missing_bucket_is_named(seaweed: EmbeddedS3, s3_client: Minio) -> None:
    with pytest.raises(BucketMissing, match="does not exist"):
        check_bucket(s3_client, seaweed.target("never-created"))


def test_wrong_credentials_are_named_without_the_secret(seaweed: EmbeddedS3) -> None:
    target = S3Target(seaweed.endpoint, "dg-wrong", "WRONG-SECRET-VALUE", "anything")
    with pytest.raises(StorageUnavailable, match="refused our credentials") as refused:
        check_bucket(make_client(target, retries=0), target)
    assert "WRONG-SECRET-VALUE" not in str(refused.value) + refused.value.hint


def test_unreachable_endpoint_fails_fast() -> None:
    target = S3Target(f"127.0.0.1:{free_port()}", "k", "s", "bucket")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="does not answer"):
        check_bucket(make_client(target, timeout=2.0, retries=0), target)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("minio:9000", ("minio:9000", False)),
        ("http://minio:9000", ("minio:9000", False)),
        ("https://s3.bank.example", ("s3.bank.example", True)),
        ("https://s3.bank.example:9443/", ("s3.bank.example:9443", True)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str, bool]) -> None:
    assert split_endpoint(endpoint) == expected


def test_split_endpoint_refuses_other_schemes() -> None:
    with pytest.raises(StorageUnavailable, match="not host:port"):
        split_endpoint("ftp://minio:21")

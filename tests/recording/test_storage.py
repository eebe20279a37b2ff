"""Buckets with object lock on a real SeaweedFS, and clear errors when S3 cannot be used."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.objectlockconfig import DAYS
from minio.retention import Retention

from api.settings import Settings
from recording.embedded_s3 import EmbeddedS3
from recording.errors import BucketMissing, ObjectLockMissing, StorageUnavailable
from recording.storage import (
    S3Target,
    check_bucket,
    ensure_bucket,
    ensure_lifecycle,
    make_client,
    split_endpoint,
)
from recording.storage_rules import GRACE_DAYS, RETENTION_TAG
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


# --- lifecycle expiry: the backstop under the end-of-retention job ---------------------------


def _our_rules(client: Minio, bucket: str) -> dict[str, tuple[str | None, int | None, int | None]]:
    """Our rules as storage reads them back: id -> (tag value, expiry days, noncurrent days)."""
    config = client.get_bucket_lifecycle(bucket)
    assert config is not None, f"{bucket} has no lifecycle configuration"
    found = {}
    for rule in config.rules:
        if not (rule.rule_id or "").startswith("dialguard-"):
            continue
        tag = rule.rule_filter.tag if rule.rule_filter is not None else None
        found[rule.rule_id or ""] = (
            tag.value if tag is not None and tag.key == RETENTION_TAG else None,
            rule.expiration.days if rule.expiration is not None else None,
            (
                rule.noncurrent_version_expiration.noncurrent_days
                if rule.noncurrent_version_expiration is not None
                else None
            ),
        )
    return found


def test_both_buckets_get_a_lifecycle_rule_per_retention_class(
    seaweed: EmbeddedS3, bucket_name: str
) -> None:
    settings = Settings(client_retention="bank-b=1095,bank-c=1095")  # a client keeps 3 years
    assert settings.retention_classes == (730, 1095)
    for bucket in (bucket_name, bucket_name + "-r"):
        target = seaweed.target(bucket)
        client = make_client(target)
        ensure_bucket(client, target, settings.retention_days, settings.retention_classes)
        assert _our_rules(client, bucket) == {
            "dialguard-730d": ("730", 730 + GRACE_DAYS, GRACE_DAYS),
            "dialguard-1095d": ("1095", 1095 + GRACE_DAYS, GRACE_DAYS),
            "dialguard-expired-delete-markers": (None, None, None),
        }
        assert not ensure_lifecycle(client, target, settings.retention_classes)  # already there


def test_an_operators_own_lifecycle_rule_is_kept(locked_target: S3Target) -> None:
    client = make_client(locked_target)
    theirs = Rule(
        ENABLED, rule_filter=Filter(prefix="scratch/"), rule_id="ops", expiration=Expiration(days=3)
    )
    config = client.get_bucket_lifecycle(locked_target.bucket)
    assert config is not None
    client.set_bucket_lifecycle(locked_target.bucket, LifecycleConfig([theirs, *config.rules]))
    assert ensure_lifecycle(client, locked_target, [1825])  # a new class is added
    read_back = client.get_bucket_lifecycle(locked_target.bucket)
    assert read_back is not None
    assert {r.rule_id for r in read_back.rules} >= {"ops", "dialguard-730d", "dialguard-1825d"}

"""S3 targets and the buckets recordings live in.

All S3 traffic goes through the `minio` SDK, so MinIO in production and the
embedded SeaweedFS in development run the same code. A bucket without object
lock is refused outright: a recording stored there could be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig

from recording.errors import BucketMissing, ObjectLockMissing, StorageUnavailable

_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}


@dataclass(frozen=True)
class S3Target:
    """Where one copy of the recordings goes."""

    endpoint: str  # host:port
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str
    secure: bool = False
    region: str = "us-east-1"

    @property
    def label(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.endpoint}/{self.bucket}"


def split_endpoint(endpoint: str, secure: bool = False) -> tuple[str, bool]:
    """`host:port` and TLS flag from either `host:port` or a URL."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise StorageUnavailable(
                f"S3 endpoint {endpoint!r} is not host:port or an http(s) URL",
                hint="set DIALGUARD_S3_ENDPOINT to e.g. minio.internal:9000",
            )
        return parts.netloc, parts.scheme == "https"
    return endpoint.rstrip("/"), secure


def make_client(target: S3Target, timeout: float = 10.0, retries: int = 2) -> Minio:
    """A client with bounded timeouts, so an outage is an error, not a hang."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
        maxsize=10,
    )
    return Minio(
        target.endpoint,
        access_key=target.access_key,
        secret_key=target.secret_key,
        secure=target.secure,
        region=target.region,
        http_client=http,
    )


def _translate(target: S3Target, exc: Exception) -> StorageUnavailable:
    if isinstance(exc, S3Error) and exc.code in _AUTH_CODES:
        return StorageUnavailable(
            f"S3 at {target.endpoint} refused our credentials ({exc.code})",
            hint="check DIALGUARD_S3_ACCESS_KEY and DIALGUARD_S3_SECRET_KEY",
        )
    reason = exc.code if isinstance(exc, S3Error) else type(exc).__name__
    return StorageUnavailable(
        f"S3 at {target.endpoint} does not answer ({reason})",
        hint="start the S3 server or correct DIALGUARD_S3_ENDPOINT",
    )


def check_bucket(client: Minio, target: S3Target) -> None:
    """Raise unless `target`'s bucket exists and has object lock enabled."""
    try:
        exists = client.bucket_exists(target.bucket)
    except Exception as exc:  # urllib3 and minio raise many kinds; all mean "cannot use it"
        raise _translate(target, exc) from exc
    if not exists:
        raise BucketMissing(
            f"bucket {target.bucket!r} does not exist at {target.endpoint}",
            hint="create it with object lock enabled (dialguard up does this when allowed)",
        )
    try:
        config = client.get_object_lock_config(target.bucket)
    except S3Error as exc:
        if exc.code in {"ObjectLockConfigurationNotFoundError", "InvalidRequest"}:
            raise ObjectLockMissing(
                f"bucket {target.bucket!r} at {target.endpoint} has no object lock",
                hint="object lock can only be enabled at creation: create a new bucket "
                "with object lock and set DIALGUARD_S3_BUCKET to it",
            ) from exc
        raise _translate(target, exc) from exc
    except Exception as exc:
        raise _translate(target, exc) from exc
    # A lock configuration without a default rule is fine: each object carries its own.
    del config


def ensure_bucket(client: Minio, target: S3Target, retention_days: int) -> None:
    """Create `target`'s bucket with object lock if it is missing, then check it.

    The bucket default is COMPLIANCE for `retention_days`, a floor under every
    object even if a later upload forgot to set its own retention.
    """
    try:
        if not client.bucket_exists(target.bucket):
            client.make_bucket(target.bucket, object_lock=True)
            client.set_object_lock_config(
                target.bucket, ObjectLockConfig(COMPLIANCE, retention_days, DAYS)
            )
    except S3Error as exc:
        if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise _translate(target, exc) from exc
    except Exception as exc:
        raise _translate(target, exc) from exc
    check_bucket(client, target)

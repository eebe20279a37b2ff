"""S3 targets and the buckets recordings live in.

All S3 traffic goes through the `minio` SDK, so MinIO in production and the
embedded SeaweedFS in development run the same code. A bucket without object
lock is refused outright: a recording stored there could be deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig

from recording.errors import BucketMissing, ObjectLockMissing, StorageUnavailable
from recording.storage_rules import (
    AUTH_CODES,
    SKEW_NOTICE,
    clock_skew,
    describe_skew,
    diagnose,
    merged,
    wanted_rules,
)

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Copy:
    """One of the two places a recording is kept."""

    name: str  # "primary" or "replica": also the prefix of its columns
    target: S3Target
    client: Minio = field(repr=False)


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


#: Requests urllib3 may send again on its own: reads only. A PUT it re-sent after a read
#: timeout was stored as one more WORM-locked version each time storage had in fact kept
#: the first (see `recording.versions`); writes are retried by the uploader, after looking.
RETRY_METHODS = frozenset({"GET", "HEAD"})


def make_client(target: S3Target, timeout: float = 10.0, retries: int = 2) -> Minio:
    """A client with bounded timeouts, so an outage is an error, not a hang.

    Only reads are retried by the HTTP layer (and refused connections, which
    sent nothing); a write is never sent twice behind the caller's back.
    """
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=urllib3.Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=RETRY_METHODS,
        ),
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


def failure(
    exc: Exception, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> tuple[str | None, timedelta | None]:
    """(S3 error code or None if storage never answered, storage's clock minus ours or None)."""
    if not isinstance(exc, S3Error):
        return None, None
    response = exc.response
    date = response.headers.get("Date") if response is not None else None
    return exc.code, clock_skew(date, clock())


def explain(exc: Exception, where: str, writing: bool) -> str:
    """The plain sentence `storage_rules.diagnose` makes of a failed S3 request."""
    code, skew = failure(exc)
    return diagnose(code, skew, writing=writing, where=where)


def _translate(target: S3Target, exc: Exception) -> StorageUnavailable:
    code, skew = failure(exc)
    skewed = skew is not None and abs(skew) >= SKEW_NOTICE
    if code == "RequestTimeTooSkewed" or (code in AUTH_CODES and skewed):
        return StorageUnavailable(
            f"S3 at {target.endpoint} refused our signed requests ({code}): {describe_skew(skew)}",
            hint="set the clocks right (NTP on this host and on storage)",
        )
    if code in AUTH_CODES:
        return StorageUnavailable(
            f"S3 at {target.endpoint} refused our credentials ({code})",
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


def ensure_bucket(
    client: Minio, target: S3Target, retention_days: int, classes: Iterable[int] = ()
) -> None:
    """Create `target`'s bucket with object lock if it is missing, then check it.

    The bucket default is COMPLIANCE for `retention_days`, a floor under every
    object even if a later upload forgot to set its own retention. Then the
    lifecycle backstop gets a rule for `retention_days` and every other
    retention class in use (see `recording.storage_rules`).
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
    ensure_lifecycle(client, target, {retention_days, *classes})


def ensure_lifecycle(client: Minio, target: S3Target, classes: Iterable[int]) -> bool:
    """Add the expiry rule of each retention class to the bucket's lifecycle; True if written.

    Only adds or corrects Dialguard's own rules, leaving an operator's alone.
    A store that refuses lifecycle configuration is logged, not fatal: the
    end-of-retention job still deletes recordings; only the backstop is missing.
    """
    try:
        update = merged(client.get_bucket_lifecycle(target.bucket), wanted_rules(classes))
        if update is None:
            return False
        client.set_bucket_lifecycle(target.bucket, update)
    except S3Error as exc:
        log.error(
            "lifecycle expiry not set: storage refused it; the end-of-retention job still "
            "deletes recordings, but storage has no backstop",
            extra={"bucket": target.label, "reason": exc.code},
        )
        return False
    log.info("lifecycle expiry rules set", extra={"bucket": target.label})
    return True

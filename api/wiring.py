"""Turning settings into the clients the packages take as parameters."""

from __future__ import annotations

from pydantic import SecretStr

from api.errors import ConfigError
from api.settings import Settings
from recording.storage import S3Target, split_endpoint


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def storage_targets(settings: Settings) -> tuple[S3Target, S3Target]:
    """(primary, replica) targets; the endpoint must be known (configured or embedded)."""
    if settings.s3_endpoint is None:
        raise ConfigError("no S3 endpoint", hint="start the embedded S3 first (dialguard up)")
    access, secret = _secret(settings.s3_access_key), _secret(settings.s3_secret_key)
    if not access or not secret:
        raise ConfigError(
            "DIALGUARD_S3_ACCESS_KEY and DIALGUARD_S3_SECRET_KEY must be set with "
            "DIALGUARD_S3_ENDPOINT",
            hint="set both, or unset DIALGUARD_S3_ENDPOINT to use the embedded store",
        )
    endpoint, secure = split_endpoint(settings.s3_endpoint, settings.s3_secure)
    primary = S3Target(endpoint, access, secret, settings.s3_bucket, secure, settings.s3_region)
    replica_endpoint, replica_secure = split_endpoint(
        settings.s3_replica_endpoint or settings.s3_endpoint, settings.s3_secure
    )
    replica = S3Target(
        replica_endpoint,
        _secret(settings.s3_replica_access_key) or access,
        _secret(settings.s3_replica_secret_key) or secret,
        settings.s3_replica_bucket,
        replica_secure,
        settings.s3_region,
    )
    if (replica.endpoint, replica.bucket) == (primary.endpoint, primary.bucket):
        raise ConfigError(
            "the replica is the same bucket as the primary: that is one copy, not two",
            hint="set DIALGUARD_S3_REPLICA_BUCKET or DIALGUARD_S3_REPLICA_ENDPOINT",
        )
    return primary, replica


def with_embedded_storage(settings: Settings, endpoint: str, access: str, secret: str) -> Settings:
    """The settings the child processes get once the embedded S3 is up."""
    return settings.model_copy(
        update={
            "s3_endpoint": endpoint,
            "s3_access_key": SecretStr(access),
            "s3_secret_key": SecretStr(secret),
            "s3_secure": False,
        }
    )

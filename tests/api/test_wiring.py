"""From settings to S3 targets: two copies, never one bucket twice."""

from __future__ import annotations

import pytest

from api.errors import ConfigError
from api.settings import Settings
from api.wiring import storage_targets


def _settings(**values: object) -> Settings:
    base: dict[str, object] = {"s3_access_key": "ak", "s3_secret_key": "sk"}
    return Settings.model_validate(base | values)


def test_replica_defaults_to_second_bucket_on_same_endpoint() -> None:
    primary, replica = storage_targets(_settings(s3_endpoint="minio:9000"))
    assert (primary.endpoint, primary.bucket) == ("minio:9000", "dialguard-recordings")
    assert (replica.endpoint, replica.bucket) == ("minio:9000", "dialguard-recordings-replica")
    assert replica.access_key == "ak"


def test_https_url_endpoint_turns_tls_on() -> None:
    primary, _ = storage_targets(
        _settings(s3_endpoint="https://s3.bank.example", s3_replica_endpoint="https://dr.example")
    )
    assert primary.secure and primary.endpoint == "s3.bank.example"


def test_same_bucket_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="one copy, not two"):
        storage_targets(
            _settings(s3_endpoint="minio:9000", s3_replica_bucket="dialguard-recordings")
        )


def test_endpoint_without_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match="ACCESS_KEY"):
        storage_targets(Settings.model_validate({"s3_endpoint": "minio:9000"}))


def test_secrets_stay_out_of_reprs() -> None:
    settings = Settings.model_validate(
        {"s3_endpoint": "minio:9000", "s3_access_key": "AKID-VALUE", "s3_secret_key": "TOP-SECRET"}
    )
    primary, replica = storage_targets(settings)
    for shown in (repr(settings), str(settings), repr(primary), repr(replica)):
        assert "TOP-SECRET" not in shown
        assert "AKID-VALUE" not in shown

"""The settings object: fixed variable names, defaults, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import MIN_RETENTION_DAYS, Settings
from tests.helpers import dialguard


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DIALGUARD_"):
            monkeypatch.delenv(key)


def test_defaults_are_loopback_and_embedded() -> None:
    settings = Settings()
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert (settings.sip_host, settings.sip_port) == ("127.0.0.1", 5060)
    assert settings.embedded_s3
    assert settings.retention_days == 730
    assert settings.phone_region == "CN"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/data/dialguard.db")


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("DIALGUARD_DATA_DIR", "/srv/dg", "data_dir", Path("/srv/dg")),
        (
            "DIALGUARD_DATABASE_URL",
            "postgresql+psycopg://u@db/dg",
            "database_url",
            "postgresql+psycopg://u@db/dg",
        ),
        ("DIALGUARD_S3_ENDPOINT", "minio:9000", "s3_endpoint", "minio:9000"),
        ("DIALGUARD_API_HOST", "0.0.0.0", "api_host", "0.0.0.0"),
        ("DIALGUARD_API_PORT", "9000", "api_port", 9000),
        ("DIALGUARD_SIP_HOST", "10.0.0.5", "sip_host", "10.0.0.5"),
        ("DIALGUARD_SIP_PORT", "5070", "sip_port", 5070),
        (
            "DIALGUARD_TRUNK_URI",
            "sip:carrier.example:5060",
            "trunk_uri",
            "sip:carrier.example:5060",
        ),
        ("DIALGUARD_RETENTION_DAYS", "1095", "retention_days", 1095),
        ("DIALGUARD_PHONE_REGION", "us", "phone_region", "US"),
    ],
)
def test_documented_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), attribute) == expected


def test_empty_endpoint_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALGUARD_S3_ENDPOINT", "")
    assert Settings().embedded_s3


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DIALGUARD_RETENTION_DAYS", "365", f"greater than or equal to {MIN_RETENTION_DAYS}"),
        ("DIALGUARD_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("DIALGUARD_PHONE_REGION", "XX", "unknown phone region"),
        ("DIALGUARD_SIP_PORT", "70000", "less than or equal to 65535"),
    ],
)
def test_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_cli_names_the_bad_variable_in_one_line(tmp_path: Path) -> None:
    result = dialguard(["doctor"], {"PATH": "/usr/bin:/bin", "DIALGUARD_TIMEZONE": "Mars/Olympus"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dialguard: DIALGUARD_TIMEZONE: unknown time zone 'Mars/Olympus'; use an IANA name"
    ]

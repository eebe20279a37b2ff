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


def test_defaults_are_loopback_and_embedded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    settings = Settings()
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert (settings.sip_host, settings.sip_port) == ("127.0.0.1", 5060)
    assert settings.embedded_s3
    assert settings.retention_days == 730
    assert settings.phone_region == "CN"
    assert settings.dialer_workers == 0  # sized to the host at `dialguard up`
    assert settings.test_carrier == "auto" and settings.test_carrier_on
    assert settings.effective_database_url == (
        f"sqlite:///{tmp_path}/.local/share/dialguard/dialguard.db"
    )


def test_data_lives_in_one_place_per_user_not_where_a_command_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "dialguard"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the spec wants it absolute
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "dialguard"
    monkeypatch.setenv("DIALGUARD_DATA_DIR", "./data")  # what `make run` sets
    assert Settings().data_dir == Path("data")


@pytest.mark.parametrize(
    ("value", "workers"), [("auto", 0), ("AUTO", 0), ("0", 0), ("", 0), ("8", 8), ("256", 256)]
)
def test_dialer_workers_auto_or_a_number(
    monkeypatch: pytest.MonkeyPatch, value: str, workers: int
) -> None:
    monkeypatch.setenv("DIALGUARD_DIALER_WORKERS", value)
    assert Settings().dialer_workers == workers


@pytest.mark.parametrize(
    ("env", "on", "language"),
    [
        ({}, True, "en"),  # a first look: no trunk, SIP on loopback; English even on cn-*
        ({"DIALGUARD_TEST_CARRIER_LANGUAGE": "zh"}, True, "zh"),
        ({"DIALGUARD_TRUNK_URI": "sip:carrier.example:5060"}, False, "en"),
        ({"DIALGUARD_SIP_HOST": "10.0.0.5"}, False, "en"),  # reachable by others: not by itself
        ({"DIALGUARD_SIP_HOST": "::1"}, True, "en"),
        ({"DIALGUARD_SIP_HOST": "localhost"}, True, "en"),
        ({"DIALGUARD_SIP_HOST": "10.0.0.5", "DIALGUARD_TEST_CARRIER": "on"}, True, "en"),
        ({"DIALGUARD_TEST_CARRIER": "off"}, False, "en"),  # production
    ],
)
def test_the_test_carrier_runs_only_for_a_first_look(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], on: bool, language: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.test_carrier_on, settings.test_line_language) == (on, language)


def test_the_test_carrier_and_a_trunk_are_not_both_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALGUARD_TRUNK_URI", "sip:carrier.example:5060")
    monkeypatch.setenv("DIALGUARD_TEST_CARRIER", "on")
    with pytest.raises(ValidationError, match="calls go to one carrier"):
        Settings()


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
        ("DIALGUARD_DIALER_WORKERS", "300", "less than or equal to 256"),
        ("DIALGUARD_DIALER_WORKERS", "many", "valid integer"),
        ("DIALGUARD_TEST_CARRIER", "yes", "'auto', 'on' or 'off'"),
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

"""The rendered kamailio.cfg: what the settings change in it, what it never contains, and
that Kamailio itself accepts it."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from dialer.edge.config import (
    EdgeBans,
    EdgeConfig,
    EdgeConfigError,
    first_algorithm,
    kamailio_db_url,
    render,
    render_secrets,
)
from dialer.edge.process import check_config, write_config
from dialer.edge.tls import ensure_self_signed, fingerprint
from recording.db.engine import make_engine
from tests.dialer.edge.conftest import AGENTS, StartEdge
from tests.dialer.edge.sipclient import Agent

SECRET = "0123456789abcdef" * 4


def _config(tmp_path: Path, **changes: object) -> EdgeConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 5060,
        "tls_port": 5061,
        "realm": "dialguard",
        "algorithm": "MD5",
        "dispatcher_list": tmp_path / "dispatcher.list",
        "tls_cert": tmp_path / "cert.pem",
        "tls_key": tmp_path / "key.pem",
        "rpc_port": 5062,
        "secrets_file": tmp_path / "kamailio-secrets.cfg",
    }
    values.update(changes)
    return EdgeConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 'modparam("auth", "algorithm", "MD5")'),
        ({}, 'modparam("auth_db", "password_column", "ha1")'),
        ({"algorithm": "SHA-256"}, 'modparam("auth", "algorithm", "SHA-256")'),
        ({"algorithm": "SHA-256"}, 'modparam("auth_db", "password_column", "ha1_sha256")'),
        ({"port": 15060}, "listen=udp:127.0.0.1:15060"),
        ({"port": 15060}, "listen=tcp:127.0.0.1:15060"),
        ({"tls_port": 15061}, "listen=tls:127.0.0.1:15061"),
        ({"rpc_port": 15099}, "listen=tcp:127.0.0.1:15099"),
        ({"host": "10.0.0.5"}, "listen=udp:10.0.0.5:5060"),
        ({"realm": "floor-2"}, '#!define REALM "floor-2"'),
        ({"bans": EdgeBans(flood_requests=99)}, '"reqs_density_per_unit", 99)'),
        ({"bans": EdgeBans(flood_s=77)}, "ipban=>size=8;autoexpire=77;"),
        ({"bans": EdgeBans(login_failures=4)}, "#!define LOGIN_FAILS 4"),
        ({"bans": EdgeBans(account_failures=44)}, "#!define ACCOUNT_FAILS 44"),
        ({"bans": EdgeBans(source_failures=55)}, "#!define SOURCE_FAILS 55"),
        ({"bans": EdgeBans(login_s=600)}, "pairban=>size=8;autoexpire=600;"),
    ],
)
def test_settings_reach_the_config(
    tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    assert expected in render(_config(tmp_path, **changes))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/dialguard/dialguard.db", "sqlite:///var/lib/dialguard/dialguard.db"),
        (
            "postgresql+psycopg://dg:pw@db.example:5432/dialguard",
            "postgres://dg:pw@db.example:5432/dialguard",
        ),
        ("postgresql://postgres@127.0.0.1/test", "postgres://postgres@127.0.0.1/test"),
    ],
)
def test_database_urls_become_kamailios(url: str, expected: str) -> None:
    assert kamailio_db_url(url) == expected


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://x@y/z"])
def test_databases_the_edge_cannot_read_are_refused(url: str) -> None:
    with pytest.raises(EdgeConfigError):
        kamailio_db_url(url)


@pytest.mark.parametrize(
    ("digest", "expected"),
    [("MD5,SHA-256", "MD5"), ("SHA-256,MD5", "SHA-256"), ("SHA-256", "SHA-256")],
)
def test_the_sites_first_digest_algorithm_is_challenged(digest: str, expected: str) -> None:
    assert first_algorithm(digest) == expected


def test_a_quote_in_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EdgeConfigError):
        render(_config(tmp_path, dispatcher_list=tmp_path / 'x".list'))


def test_the_secret_and_database_password_stay_out_of_the_config(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(
        tmp_path / "tls", "127.0.0.1", datetime.datetime.now(datetime.UTC)
    )
    config = _config(tmp_path, tls_cert=cert, tls_key=key)
    path = write_config(
        config, SECRET, "postgresql://dg:hunter2@127.0.0.1/dialguard", "1 sip:127.0.0.1:5100\n"
    )
    rendered = path.read_text()
    assert SECRET not in rendered and "hunter2" not in rendered
    assert f'#!include_file "{config.secrets_file}"' in rendered
    assert SECRET in config.secrets_file.read_text()
    assert stat.S_IMODE(os.stat(config.secrets_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    check_config(path)  # kamailio -c: Kamailio itself reads the whole config


def test_a_secret_that_is_not_hex_is_refused() -> None:
    with pytest.raises(EdgeConfigError):
        render_secrets('abc"def', "sqlite:////x.db")


def test_the_self_signed_certificate_is_made_once(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert, _ = ensure_self_signed(tmp_path, "127.0.0.1", now)
    first = fingerprint(cert)
    ensure_self_signed(tmp_path, "127.0.0.1", now)
    assert fingerprint(cert) == first and len(first.split(":")) == 32


def test_the_edge_logs_agents_in_from_postgresql(
    start_edge: StartEdge, engine: object, database_url: str
) -> None:
    """Both backends: the view over sip_accounts and usrloc's tables work where Kamailio reads."""
    from datetime import UTC, datetime

    from dialer.softphones import set_sip_password
    from recording.db.engine import session_factory

    with session_factory(engine)() as session:  # type: ignore[arg-type]
        set_sip_password(session, "alice", "dialguard", AGENTS["alice"], datetime.now(UTC))
    edge = start_edge(workers=1, database_url=database_url)
    agent = Agent("127.0.0.1", edge.port, "alice", AGENTS["alice"])
    try:
        reply = agent.register()
        assert reply is not None and reply.status == 200, edge.log()[-1500:]
    finally:
        agent.close()
    check = make_engine(database_url)
    with check.connect() as connection:
        users = connection.execute(text("SELECT username FROM location")).scalars().all()
    check.dispose()
    assert users == ["alice"]
    from dialer.edge.registrations import live_contacts

    with session_factory(engine)() as session:  # type: ignore[arg-type]
        (found,) = live_contacts(session, "alice", datetime.now(UTC))
    assert found.expires is not None
    assert 290 < (found.expires - datetime.now(UTC)).total_seconds() <= 300


def test_tls_is_1_2_and_up_with_the_configured_certificate(tmp_path: Path) -> None:
    from dialer.edge.config import render_tls

    config = _config(tmp_path, tls_cert=Path("/etc/site/cert.pem"), tls_key=Path("/k.pem"))
    text = render_tls(config)
    assert "method = TLSv1.2+" in text
    assert "certificate = /etc/site/cert.pem" in text and "private_key = /k.pem" in text
    assert f'modparam("tls", "config", "{config.tls_file}")' in render(config)


def test_dialguard_edge_config_prints_a_config_kamailio_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli.main import main

    for name in [k for k in os.environ if k.startswith("DIALGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DIALGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIALGUARD_DATABASE_URL", "postgresql://dg:hunter2@10.0.0.9/dialguard")
    monkeypatch.setenv("DIALGUARD_EDGE_SECRET", SECRET)
    assert main(["edge", "config"]) == 0
    printed = capsys.readouterr().out
    assert '#!include_file "/etc/kamailio/dialguard/kamailio-secrets.cfg"' in printed
    assert SECRET not in printed and "hunter2" not in printed
    where = tmp_path / "edgehost"
    argv = ["edge", "config", "--dir", str(where), "--write", "--workers", "2"]
    assert main([*argv, "--dialer-host", "10.0.1.11", "--dialer-host", "10.0.1.12"]) == 0
    written = capsys.readouterr().out
    assert SECRET not in written
    assert (where / "dispatcher.list").read_text().count("\n") == 4
    assert "10.0.1.12:5101" in (where / "dispatcher.list").read_text()
    config = where / "kamailio.cfg"
    assert config.read_text() == written
    check_config(config)

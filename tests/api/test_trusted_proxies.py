"""The login's source address: X-Forwarded-For only from a trusted proxy, read from the right."""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.sessions import Limits
from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.settings import Settings
from api.web.proxies import client_address, forwarded_scheme, parse_networks
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0

PROXIES = parse_networks("10.0.0.0/24, 10.9.9.9, fd00::/64")
PASSWORD = "a long passphrase"


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "source"),
    [
        # no trusted proxies (the default): the header is never read
        ("203.0.113.9", ["198.51.100.7"], (), "203.0.113.9"),
        # an untrusted peer cannot name its own source
        ("203.0.113.9", ["198.51.100.7"], PROXIES, "203.0.113.9"),
        ("10.0.1.1", ["198.51.100.7"], PROXIES, "10.0.1.1"),  # just outside the block
        # a trusted proxy: the address it appended
        ("10.0.0.2", ["198.51.100.7"], PROXIES, "198.51.100.7"),
        # a client's own forged entries are left of what the proxy appended
        ("10.0.0.2", ["1.1.1.1, 2.2.2.2, 198.51.100.7"], PROXIES, "198.51.100.7"),
        # two proxies of ours in a row: the right-most address that is not one of them
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7, 10.9.9.9"], PROXIES, "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7", "10.9.9.9"], PROXIES, "198.51.100.7"),
        # every entry is a proxy of ours: the left-most is the client
        ("10.0.0.2", ["10.0.0.7, 10.9.9.9"], PROXIES, "10.0.0.7"),
        # no header through a trusted proxy: the proxy is all we know
        ("10.0.0.2", [], PROXIES, "10.0.0.2"),
        ("10.0.0.2", [" , "], PROXIES, "10.0.0.2"),
        # an entry that is no address stops the walk at the proxy that wrote it
        ("10.0.0.2", ["198.51.100.7, unknown"], PROXIES, "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.7, 10.9.9.9, garbage"], PROXIES, "10.0.0.2"),
        ("10.0.0.2", ["garbage, 10.9.9.9"], PROXIES, "10.9.9.9"),
        # ports and IPv6, as proxies write them
        ("10.0.0.2", ["198.51.100.7:51234"], PROXIES, "198.51.100.7"),
        ("fd00::5", ["[2001:db8::1]:443"], PROXIES, "2001:db8::1"),
        ("fd00::5", ["2001:db8::1"], PROXIES, "2001:db8::1"),
        ("2001:db8::9", ["198.51.100.7"], PROXIES, "2001:db8::9"),
        # a peer that is no address (a test client, a unix socket) is never trusted
        ("testclient", ["198.51.100.7"], PROXIES, "testclient"),
    ],
)
def test_client_address(
    peer: str, forwarded: list[str], trusted: tuple[ipaddress.IPv4Network, ...], source: str
) -> None:
    assert client_address(peer, forwarded, trusted) == source


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("10.0.0.2", "https", "https"),
        ("10.0.0.2", "http, https", "https"),  # the last proxy's word
        ("10.0.0.2", "HTTPS", "https"),
        ("10.0.0.2", "gopher", None),
        ("10.0.0.2", None, None),
        ("203.0.113.9", "https", None),  # not from a stranger
    ],
)
def test_forwarded_scheme(peer: str, proto: str | None, scheme: str | None) -> None:
    assert forwarded_scheme(peer, proto, PROXIES) == scheme


@pytest.mark.parametrize(
    ("value", "count"),
    [("", 0), ("10.0.0.5", 1), ("10.0.0.5, 10.1.0.0/16,::1", 3), (" 127.0.0.1 ,", 1)],
)
def test_the_setting_names_addresses_and_blocks(
    monkeypatch: pytest.MonkeyPatch, value: str, count: int
) -> None:
    monkeypatch.setenv("DIALGUARD_TRUSTED_PROXIES", value)
    assert len(Settings().trusted_proxy_networks) == count


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.5/8", "10.0.0.0/33", "*"])
def test_a_wrong_proxy_setting_stops_the_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DIALGUARD_TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="not an IP address or CIDR block"):
        Settings()


def test_settings_default_to_no_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALGUARD_TRUSTED_PROXIES", raising=False)
    assert Settings().trusted_proxy_networks == ()


class Site:
    """The console as browsers reach it: each from a peer address, maybe through our proxy."""

    def __init__(self, services: Services, engine: Engine, trusted: str) -> None:
        limits = Limits(pair_free=2, source_free=2, account_free=10_000)
        self.services = dataclasses.replace(
            services, login_limits=limits, trusted_proxies=parse_networks(trusted)
        )
        self.app = make_app(self.services, engine)
        with self.services.sessions() as session:
            for name in ("qa1", "qa2", "qa3"):
                create_user(session, name, "qa", PASSWORD, T0)

    def login(
        self, peer: str, username: str, password: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        browser = TestClient(self.app, client=(peer, 50000), follow_redirects=False)
        form = {"username": username, "password": password}
        answer = browser.post("/login", data=form, headers=headers or {})
        return answer.status_code, answer.headers.get("set-cookie", "")

    def sources(self) -> list[str]:
        with self.services.sessions() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["login", "login-failed"]))
                .order_by(AuditEntry.seq)
            )
            return [json.loads(row.detail)["source"] for row in rows]


def test_behind_a_trusted_proxy_each_client_is_its_own_source(
    services: Services, engine: Engine
) -> None:
    site = Site(services, engine, "10.0.0.2")
    stranger = {"X-Forwarded-For": "6.6.6.6, 198.51.100.66"}  # 6.6.6.6: a forged entry
    for _ in range(3):  # a stranger's guesses, through the proxy
        status, _ = site.login("10.0.0.2", "qa1", "wrong guess", stranger)
    assert status == 429  # the stranger is slowed...
    colleague = {"X-Forwarded-For": "198.51.100.8", "X-Forwarded-Proto": "https"}
    status, cookie = site.login("10.0.0.2", "qa2", PASSWORD, colleague)
    assert status == 303  # ...not everyone behind the same proxy
    assert "secure" in cookie.lower()  # the proxy terminated TLS: the cookie says so
    assert site.sources() == ["198.51.100.66"] * 3 + ["198.51.100.8"]


def test_a_stranger_cannot_pick_a_source_by_header(services: Services, engine: Engine) -> None:
    site = Site(services, engine, "10.0.0.2")
    for n in range(3):  # not through our proxy: a new X-Forwarded-For each time changes nothing
        headers = {"X-Forwarded-For": f"198.51.100.{n}", "X-Forwarded-Proto": "https"}
        status, _ = site.login("203.0.113.9", "qa3", "wrong guess", headers)
    assert status == 429
    status, _ = site.login("203.0.113.9", "qa3", PASSWORD, {"X-Forwarded-Proto": "https"})
    assert status == 429  # still waiting
    assert site.sources() == ["203.0.113.9"] * 4


def test_without_trusted_proxies_the_header_is_ignored(services: Services, engine: Engine) -> None:
    site = Site(services, engine, "")
    status, cookie = site.login("127.0.0.1", "qa1", PASSWORD, {"X-Forwarded-For": "198.51.100.7"})
    assert status == 303 and "secure" not in cookie.lower()
    assert site.sources() == ["127.0.0.1"]

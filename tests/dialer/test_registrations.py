"""Where an agent's softphone is registered, read from Kamailio's usrloc table `location`
(as Kamailio writes it: naive local-time expiry, the epoch for a permanent contact), on
SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dialer.models import SipRegistration
from dialer.softphones import registration, registration_reader
from recording.db.engine import session_factory

NOW = datetime.now(UTC).replace(microsecond=0)


def _location(engine: Engine, username: str, contact: str, expires: datetime | None) -> None:
    when = (
        expires.astimezone().replace(tzinfo=None)
        if expires is not None
        else datetime(1970, 1, 1)  # usrloc: never expires
    )
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO location (ruid, username, contact, expires, user_agent) "
                "VALUES (:ruid, :username, :contact, :expires, 'baresip 1.0.0')"
            ),
            {
                "ruid": secrets.token_hex(8),
                "username": username,
                "contact": contact,
                "expires": when.strftime("%Y-%m-%d %H:%M:%S"),
            },
        )


def test_the_newest_live_contact_counts_and_an_expired_one_does_not(engine: Engine) -> None:
    _location(engine, "agent1", "sip:agent1@10.0.0.5:5060", NOW - timedelta(seconds=5))
    read = registration_reader(session_factory(engine))
    assert read("agent1", NOW) is None
    _location(engine, "agent1", "sip:agent1@10.0.0.6:5060", NOW + timedelta(seconds=300))
    _location(engine, "agent1", "sip:agent1@10.0.0.7:5060", NOW + timedelta(seconds=900))
    found = read("agent1", NOW)
    assert found is not None
    assert found.contact == "sip:agent1@10.0.0.7:5060"
    assert found.expires_at == NOW + timedelta(seconds=900)
    assert found.user_agent == "baresip 1.0.0"
    assert read("agent1", NOW + timedelta(seconds=901)) is None
    assert read("agent2", NOW) is None


def test_a_permanent_contact_never_expires(engine: Engine) -> None:
    _location(engine, "desk7", "sip:desk7@10.0.0.9:5060", None)
    found = registration_reader(session_factory(engine))("desk7", NOW + timedelta(days=400))
    assert found is not None and found.expires_at is None


def test_a_registration_the_old_front_wrote_counts_until_it_expires(engine: Engine) -> None:
    with session_factory(engine)() as session:
        session.add(
            SipRegistration(
                username="agent3",
                contact="sip:agent3@10.0.0.8:5060",
                expires_at=NOW + timedelta(seconds=60),
                updated_at=NOW,
            )
        )
        session.commit()
        live = registration(session, "agent3", NOW)
        assert live is not None and live.contact == "sip:agent3@10.0.0.8:5060"
        assert registration(session, "agent3", NOW + timedelta(seconds=61)) is None


def test_a_julian_day_expiry_as_kamailio_sqlite_writes_it_is_read(engine: Engine) -> None:
    """db_sqlite stores `expires` as a Julian day number (REAL), which a DateTime column
    cannot parse; click-to-call on SQLite once failed with a 500 on it."""
    if engine.dialect.name != "sqlite":
        return  # db_postgres writes a timestamp: the tests above
    julian = (NOW + timedelta(seconds=600)).timestamp() / 86400.0 + 2440587.5
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO location (ruid, username, contact, expires, user_agent) "
                "VALUES ('r1', 'agent9', 'sip:agent9@10.0.0.8:5060', :jd, 'baresip 1.0.0')"
            ),
            {"jd": julian},
        )
    read = registration_reader(session_factory(engine))
    found = read("agent9", NOW)
    assert found is not None and found.contact == "sip:agent9@10.0.0.8:5060"
    assert found.expires_at is not None
    assert abs((found.expires_at - (NOW + timedelta(seconds=600))).total_seconds()) < 1
    assert read("agent9", NOW + timedelta(seconds=601)) is None

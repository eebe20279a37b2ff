"""Agents' softphones: their SIP logins, stored as HA1 digests, and where each is registered.

A standalone worker checks logins with `credential_lookup`; behind the edge,
Kamailio reads the same HA1s (the `kamailio_subscriber` view) and keeps
registrations in its usrloc table `location`. `registration` reads where an
agent's softphone is, for click-to-call and the console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dialer.edge.registrations import live_contacts
from dialer.models import SipAccount, SipRegistration
from dialer.sip.digest import Algorithm, Credential
from recording.db.engine import as_utc


def set_sip_password(
    session: Session, username: str, realm: str, password: str, now: datetime
) -> None:
    """Store an agent's softphone credentials as HA1 digests (MD5 and SHA-256)."""
    cred = Credential.from_password(username, realm, password, (Algorithm.MD5, Algorithm.SHA256))
    row = session.get(SipAccount, username) or SipAccount(username=username)
    row.realm = realm
    row.ha1_md5 = cred.ha1[Algorithm.MD5]
    row.ha1_sha256 = cred.ha1[Algorithm.SHA256]
    row.disabled = False
    row.updated_at = now
    session.add(row)
    session.commit()


def credential_lookup(sessions: sessionmaker[Session]) -> Callable[[str], Credential | None]:
    def lookup(username: str) -> Credential | None:
        with sessions() as session:
            row = session.get(SipAccount, username)
            if row is None or row.disabled:
                return None
            return Credential(
                username,
                row.realm,
                {Algorithm.MD5: row.ha1_md5, Algorithm.SHA256: row.ha1_sha256},
            )

    return lookup


@dataclass(frozen=True)
class Registration:
    username: str
    contact: str  # the softphone's Contact URI, as it registered it
    expires_at: datetime | None  # aware; None: a permanent contact
    user_agent: str = ""


def registration(session: Session, username: str, now: datetime) -> Registration | None:
    """The agent's newest live registration, or None if the softphone is not registered.

    Kamailio's `location` first. Rows of the old `sip_registrations` table
    (the Python front wrote them; nothing does now) still count until they
    expire, so an upgrade does not make registered agents look offline.
    """
    try:  # Kamailio writes `expires` its own way per database: live_contacts reads both
        live = live_contacts(session, username, now)
    except SQLAlchemyError:  # a database not yet migrated to 0027: no edge has written it
        session.rollback()
        live = []
    if live:
        newest = live[0]
        return Registration(username, newest.contact, newest.expires, newest.user_agent)
    old = session.get(SipRegistration, username)
    if old is None or as_utc(old.expires_at) < now:
        return None
    return Registration(username, old.contact, as_utc(old.expires_at))


def registration_reader(
    sessions: sessionmaker[Session],
) -> Callable[[str, datetime], Registration | None]:
    def read(username: str, now: datetime) -> Registration | None:
        with sessions() as session:
            return registration(session, username, now)

    return read

"""Agents' softphones: their SIP logins, stored as HA1 digests, and where each is registered.

The B2BUA and the front check logins with `credential_lookup`; the front's
REGISTER handler is `registrar`, and a click-to-call rings the contact it
stored (dialer/click_to_call.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dialer.models import SipAccount, SipRegistration
from dialer.sip.digest import Algorithm, Credential


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


def registrar(sessions: sessionmaker[Session]) -> Callable[[str, str | None, int], None]:
    """The front's REGISTER handler: where each agent's softphone can be rung."""

    def register(username: str, contact: str | None, seconds: int) -> None:
        now = datetime.now(UTC)
        with sessions() as session:
            row = session.get(SipRegistration, username)
            if contact is None:
                if row is not None:
                    session.delete(row)
            else:
                row = row or SipRegistration(username=username)
                row.contact, row.updated_at = contact[:255], now
                row.expires_at = now + timedelta(seconds=seconds)
                session.add(row)
            session.commit()

    return register

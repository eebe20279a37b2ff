"""Console logins: server-side sessions behind an HttpOnly cookie, and lockout after failures.

The cookie holds only a random id; the database holds its hash, so a copy of
the database opens no session. Five wrong passwords lock the account for
15 minutes: the console faces the agency's network, and a guessed supervisor
password opens every recording.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import LoginFailure, User, WebSession
from api.users import verify_password
from recording.db import as_utc

COOKIE = "dg_session"
LIFETIME = timedelta(hours=10)  # a working day; then log in again
IDLE = timedelta(minutes=30)


@dataclass(frozen=True)
class Lockout:
    failures: int = 5
    period: timedelta = timedelta(minutes=15)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginRefused(Exception):
    def __init__(self, message: str, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked


def log_in(
    session: Session, username: str, password: str, now: datetime, lockout: Lockout = Lockout()
) -> tuple[User, str]:
    """(user, cookie value) for the right password; LoginRefused otherwise, the same words
    for an unknown user and a wrong password so the form does not reveal who exists."""
    since = now - lockout.period
    failures = session.scalars(
        select(LoginFailure.at).where(LoginFailure.username == username, LoginFailure.at >= since)
    ).all()
    if len(failures) >= lockout.failures:
        until = max(as_utc(at) for at in failures) + lockout.period
        raise LoginRefused(
            f"too many wrong passwords: try again after {until:%H:%M} UTC", locked=True
        )
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.disabled or not verify_password(user, password):
        session.add(LoginFailure(username=username[:64], at=now))
        session.commit()
        raise LoginRefused("wrong user name or password")
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=_digest(token),
            csrf=secrets.token_urlsafe(24),
            user_id=user.id,
            created_at=now,
            last_seen=now,
        )
    )
    session.commit()
    return user, token


def session_user(session: Session, token: str, now: datetime) -> tuple[User, WebSession] | None:
    """The user of a live session (touched now), or None if unknown, ended or expired."""
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token), WebSession.ended_at.is_(None))
    ).first()
    if found is None:
        return None
    web, user = found
    if (
        user.disabled
        or now - as_utc(web.created_at) > LIFETIME
        or now - as_utc(web.last_seen) > IDLE
    ):
        web.ended_at = now
        session.commit()
        return None
    web.last_seen = now
    session.commit()
    return user, web


def log_out(session: Session, token: str, now: datetime) -> None:
    web = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
    if web is not None and web.ended_at is None:
        web.ended_at = now
        session.commit()

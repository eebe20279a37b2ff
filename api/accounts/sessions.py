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

from api.accounts import totp
from api.accounts.models import LoginFailure, Role, User, WebSession
from api.accounts.users import verify_password
from recording.db.engine import as_utc
from recording.fields import open_text, seal_text
from recording.keys import KeyWrapper

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


SECOND_FACTOR_ROLES = (Role.SUPERVISOR, Role.ADMIN)


def enroll_totp(session: Session, user: User, keys: KeyWrapper) -> str:
    """A new TOTP secret for `user` (replacing any), sealed at rest; shown to them once."""
    secret = totp.new_secret()
    user.totp_sealed = seal_text(keys, secret)
    user.totp_last_step = None
    session.commit()
    return secret


def _second_factor(
    user: User, code: str, now: datetime, keys: KeyWrapper | None, required: bool
) -> str | None:
    """Why the one-time code does not let this user in, or None when it does (or is not needed)."""
    if user.totp_sealed is None:
        if required and user.role in SECOND_FACTOR_ROLES:
            return (
                f"a {user.role.value} logs in with a one-time code: ask an admin to run "
                f"`dialguard admin enroll-totp {user.username}`"
            )
        return None
    if keys is None:
        return "one-time codes cannot be checked here"
    step = totp.verify(
        open_text(keys, user.totp_sealed), code, now.timestamp(), user.totp_last_step
    )
    if step is None:
        return "wrong user name, password or one-time code"
    user.totp_last_step = step
    return None


def log_in(
    session: Session,
    username: str,
    password: str,
    now: datetime,
    lockout: Lockout = Lockout(),
    *,
    code: str = "",
    keys: KeyWrapper | None = None,
    require_totp: bool = True,
) -> tuple[User, str]:
    """(user, cookie value) for the right password (and code); LoginRefused otherwise.

    The same words for an unknown user and a wrong password, so the form does
    not reveal who exists; a wrong one-time code counts as a failed login.
    """
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
    refused = _second_factor(user, code, now, keys, require_totp)
    if refused is not None:
        if user.totp_sealed is not None:
            session.add(LoginFailure(username=username[:64], at=now))
        session.commit()
        raise LoginRefused(refused)
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

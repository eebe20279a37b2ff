"""Console logins: server-side sessions behind an HttpOnly cookie, and limits that are no oracle.

The cookie holds only a random id; the database holds its hash, so a copy of
the database opens no session.

A refused login says one thing, "wrong user name, password or one-time
code", whatever was wrong: an unknown name, a disabled account, a wrong
password, a missing or wrong code, a supervisor without a code enrolled. An
unknown name costs the same argon2 check as a known one, so the time does
not tell either. Why it was refused goes to the audit log, for admins only.

Failures are limited per account *and* per source (the client's address)
together, with delays that grow with each failure:

- one account from one source: after `pair_free` failures each further try
  waits longer (5 s, 10 s, 20 s ... up to 15 minutes). Only that pair is
  slowed: someone typing a supervisor's name elsewhere does not lock the
  supervisor out.
- one source over all accounts (password spraying): after `source_free`.
- one account from all sources (a distributed guess): after `account_free`,
  but only for sources not in good standing. A source is in good standing
  for an account when the account logged in from it before (`LoginSource`)
  and it is not over its own pair limit: a correct password and code from
  there always gets in, however many strangers fail elsewhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from api.accounts import totp
from api.accounts.models import LoginFailure, LoginSource, Role, User, WebSession
from api.accounts.users import burn_verify, verify_password
from api.i18n import N_
from recording.db.engine import as_utc
from recording.fields import open_text, seal_text
from recording.keys import KeyWrapper

COOKIE = "dg_session"
LIFETIME = timedelta(hours=10)  # a working day; then log in again
IDLE = timedelta(minutes=30)
REFUSED = N_("wrong user name, password or one-time code")


@dataclass(frozen=True)
class Limits:
    """How many failures are free, and how the wait after them grows."""

    window: timedelta = timedelta(hours=1)  # failures older than this are forgotten
    pair_free: int = 3
    source_free: int = 20
    account_free: int = 10
    first_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(minutes=15)
    good_standing: timedelta = timedelta(days=90)

    def delay(self, failures: int, free: int) -> timedelta:
        """How long after the last failure the next try must wait; zero while still free."""
        if failures < free:
            return timedelta(0)
        steps = min(failures - free, 20)  # 2**20 * 5 s is far past the cap already
        grown: timedelta = self.first_delay * (2**steps)
        return min(self.max_delay, grown)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginRefused(Exception):
    """A refused login: `str()` is what the person is told, `why` what the audit log keeps."""

    def __init__(
        self, message: str, why: str, locked: bool = False, until: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.why = why
        self.locked = locked
        self.until = until


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
    """Why the one-time code does not let this user in (for the audit log), or None."""
    if user.totp_sealed is None:
        if required and user.role in SECOND_FACTOR_ROLES:
            return "no-code-enrolled"
        return None
    if keys is None:
        return "codes-uncheckable"
    step = totp.verify(
        open_text(keys, user.totp_sealed), code, now.timestamp(), user.totp_last_step
    )
    if step is None:
        return "missing-code" if not code.strip() else "wrong-code"
    user.totp_last_step = step
    return None


def _failures(
    session: Session, since: datetime, *where: ColumnElement[bool]
) -> tuple[int, datetime | None]:
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(LoginFailure.at >= since, *where)
    ).one()
    return int(count or 0), as_utc(last) if last is not None else None


def _wait_until(
    limits: Limits, found: tuple[int, datetime | None], free: int, now: datetime
) -> datetime | None:
    count, last = found
    if last is None:
        return None
    until = last + limits.delay(count, free)
    return until if until > now else None


def throttled_until(
    session: Session, username: str, source: str, now: datetime, limits: Limits = Limits()
) -> tuple[datetime, str] | None:
    """(until when, which limit) if a try of `username` from `source` must wait now."""
    since = now - limits.window
    pair = _failures(
        session, since, LoginFailure.username == username, LoginFailure.source == source
    )
    until = _wait_until(limits, pair, limits.pair_free, now)
    if until is not None:
        return until, "throttled-pair"
    known = session.scalar(
        select(LoginSource.last_ok).where(
            LoginSource.username == username, LoginSource.source == source
        )
    )
    if known is not None and now - as_utc(known) <= limits.good_standing:
        return None  # a source in good standing: strangers elsewhere do not slow it
    by_source = _failures(session, since, LoginFailure.source == source)
    until = _wait_until(limits, by_source, limits.source_free, now)
    if until is not None:
        return until, "throttled-source"
    by_account = _failures(session, since, LoginFailure.username == username)
    until = _wait_until(limits, by_account, limits.account_free, now)
    if until is not None:
        return until, "throttled-account"
    return None


def locked_until(
    session: Session, username: str, now: datetime, limits: Limits = Limits()
) -> datetime | None:
    """Until when some source is kept waiting for this account (for the admin's users page)."""
    since = now - limits.window
    latest = None
    for _source, count, last in session.execute(
        select(LoginFailure.source, func.count(), func.max(LoginFailure.at))
        .where(LoginFailure.username == username, LoginFailure.at >= since)
        .group_by(LoginFailure.source)
    ):
        until = as_utc(last) + limits.delay(int(count), limits.pair_free)
        if until > now and (latest is None or until > latest):
            latest = until
    return latest


def _remember_source(session: Session, username: str, source: str, now: datetime) -> None:
    known = session.scalar(
        select(LoginSource).where(LoginSource.username == username, LoginSource.source == source)
    )
    if known is None:
        session.add(LoginSource(username=username, source=source, last_ok=now))
    else:
        known.last_ok = now


def log_in(
    session: Session,
    username: str,
    password: str,
    now: datetime,
    limits: Limits = Limits(),
    *,
    source: str = "unknown",
    code: str = "",
    keys: KeyWrapper | None = None,
    require_totp: bool = True,
) -> tuple[User, str]:
    """(user, cookie value) for the right password (and code); LoginRefused otherwise.

    Every refusal but a wait says `REFUSED`, after the same argon2 work; a
    wrong one-time code counts as a failure like a wrong password.
    """
    name, source = username[:64], source[:64]
    waiting = throttled_until(session, name, source, now, limits)
    if waiting is not None:
        until, limit = waiting
        raise LoginRefused(
            f"too many failed logins: try again after {until:%H:%M:%S} UTC",
            limit,
            locked=True,
            until=until,
        )
    user = session.scalar(select(User).where(User.username == name))
    why: str | None
    if user is None:
        burn_verify(password)
        why = "unknown-user"
    elif not verify_password(user, password):
        why = "wrong-password"
    elif user.disabled:
        why = "disabled"
    else:
        why = _second_factor(user, code, now, keys, require_totp)
    if why is not None or user is None:
        session.rollback()  # a code step half-taken is not kept
        session.add(LoginFailure(username=name, at=now, source=source))
        session.commit()
        raise LoginRefused(REFUSED, why or "unknown-user")
    _remember_source(session, user.username, source, now)
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

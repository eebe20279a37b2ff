"""Account administration from the console: create, change role, disable, unlock, reset TOTP.

Each change is committed together with its audit entry (who changed what),
and the refusals that protect the site's own administration are decided in
`api.console.admin_rules`. A role or a disabled flag takes effect on the account's
next request: sessions and tokens look the account up every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from api.accounts.models import LoginFailure, Role, User, WebSession, role_word
from api.accounts.sessions import Limits, enroll_totp, locked_until
from api.accounts.users import client_for, create_user
from api.audit.chain import record
from api.console.admin_rules import Change, Target, refused
from api.errors import UserError
from api.i18n import translate
from dialer.models import SipAccount
from recording.db.engine import as_utc
from recording.keys import KeyWrapper


@dataclass(frozen=True)
class Account:
    """One row of the users page."""

    username: str
    role: Role
    client_id: str | None
    disabled: bool
    locked_until: datetime | None
    totp: bool
    created_at: datetime


@dataclass(frozen=True)
class Done:
    """What the admin is told; `totp_secret` is shown once and never stored in the clear."""

    message: str
    totp_secret: str | None = None


_LIMITS = Limits()


def accounts(session: Session, now: datetime, limits: Limits = _LIMITS) -> list[Account]:
    found = []
    for user in session.scalars(select(User).order_by(User.username)):
        locked = locked_until(session, user.username, now, limits)
        enrolled = user.totp_sealed is not None
        created = as_utc(user.created_at)
        found.append(
            Account(
                user.username, user.role, user.client_id, user.disabled, locked, enrolled, created
            )
        )
    return found


def _active_admins(session: Session) -> int:
    # FOR UPDATE on PostgreSQL: two admins demoting each other at once cannot both pass.
    rows = session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.disabled.is_(False)).with_for_update()
    ).all()
    return len(rows)


def _client(role: Role, client: str | None) -> str | None:
    return client_for(role, client)


def create(
    session: Session,
    actor: str,
    username: str,
    role: str,
    client: str | None,
    password: str,
    now: datetime,
) -> Done:
    """A new account; UserError names what is wrong (name taken, password too short...)."""
    try:
        parsed = Role(role)
    except ValueError:
        raise UserError(
            translate("unknown role %(role)r", role=role),
            hint=translate("pick a role from the list"),
        ) from None
    user = create_user(session, username, parsed.value, password, now, client=client)
    detail = {"role": parsed.value, "client": user.client_id}
    record(session, actor, "user-created", user.username, now, detail=detail)
    return Done(translate("created %(role)s %(name)s", role=role_word(parsed), name=user.username))


def change(
    session: Session,
    actor: str,
    username: str,
    what: Change,
    now: datetime,
    keys: KeyWrapper,
    new_role: str | None = None,
    client: str | None = None,
) -> Done:
    """Apply one change to `username`, audited; UserError when it is refused."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(
            translate("no account %(name)r", name=username),
            hint=translate("reload the users page"),
        )
    role = None
    if new_role is not None:
        try:
            role = Role(new_role)
        except ValueError:
            raise UserError(
                translate("unknown role %(role)r", role=new_role),
                hint=translate("pick a role from the list"),
            ) from None
    target = Target(user.username, user.role, user.disabled)
    why = refused(actor, target, what, _active_admins(session), role, client)
    if why is not None:
        session.rollback()
        raise UserError(why, hint=translate("nothing was changed"))
    if what is Change.ROLE:
        assert role is not None
        before = (user.role.value, user.client_id)
        user.role, user.client_id = role, _client(role, client)
        detail = {
            "from": before[0],
            "to": role.value,
            "client_from": before[1],
            "client": user.client_id,
        }
        record(session, actor, "user-role-changed", username, now, detail=detail)
        if user.client_id:
            return Done(
                translate(
                    "%(name)s is now %(role)s for client %(client)s",
                    name=username,
                    role=role_word(role),
                    client=user.client_id,
                )
            )
        return Done(translate("%(name)s is now %(role)s", name=username, role=role_word(role)))
    if what in (Change.DISABLE, Change.ENABLE):
        off = what is Change.DISABLE
        user.disabled = off
        session.execute(
            update(SipAccount).where(SipAccount.username == username).values(disabled=off)
        )
        if off:  # open console sessions end now, not at their next request
            session.execute(
                update(WebSession)
                .where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
                .values(ended_at=now)
            )
        record(session, actor, "user-disabled" if off else "user-enabled", username, now)
        if off:
            return Done(translate("%(name)s is disabled", name=username))
        return Done(translate("%(name)s is enabled again", name=username))
    if what is Change.UNLOCK:
        count = session.scalar(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.username == username)
        )
        session.execute(delete(LoginFailure).where(LoginFailure.username == username))
        record(session, actor, "user-unlocked", username, now, detail={"failures": count or 0})
        return Done(
            translate(
                "%(name)s may log in again; %(count)s failed login(s) forgotten",
                name=username,
                count=count or 0,
            )
        )
    secret = enroll_totp(session, user, keys)
    record(session, actor, "totp-reset", username, now)
    return Done(
        translate(
            "%(name)s has a new one-time-code secret; the old codes no longer work", name=username
        ),
        secret,
    )

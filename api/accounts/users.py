"""Creating accounts. Passwords are stored only as argon2id hashes, and must be hard to guess.

Length alone does not make a password strong ("passwordpassword" is long);
`zxcvbn` estimates how many guesses one would take (dictionaries, names,
keyboard patterns, dates, repeats), with the account's own name as a hint,
and a password it rates below "safely unguessable" (3 of 4) is refused with
its advice. An auditor always sees one client's calls, so an auditor account
cannot be made without that client.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from api.accounts.models import Role, User
from api.errors import UserError
from api.i18n import gettext, translate

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CLIENT_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
MIN_PASSWORD_LENGTH = 12
#: zxcvbn's score: 3 is "safely unguessable: moderate protection from offline slow-hash attacks".
MIN_PASSWORD_SCORE = 3
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is too weak, in words a person can act on, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return translate("password too short: use at least %(n)s characters", n=MIN_PASSWORD_LENGTH)
    # zxcvbn's cost grows with length; a pass phrase of 100 characters is plenty to judge
    result = zxcvbn(password[:100], user_inputs=[username, "dialguard"])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result.get("feedback", {})
    advice = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
    if not advice:
        return gettext("password too easy to guess")
    # zxcvbn's advice is English only: the head says in the reader's language what is wrong
    return translate("password too easy to guess: %(advice)s", advice=advice)


def client_for(role: Role, client: str | None) -> str | None:
    """The client an account of `role` is bound to: an auditor's is required, others have none."""
    if role is not Role.AUDITOR:
        return None
    if not client or not re.match(CLIENT_PATTERN, client):
        raise UserError(
            gettext("an auditor sees one client bank's calls: give the client id"),
            hint=gettext("letters, digits, '.', '_', '@' or '-', as the debtors' client ids"),
        )
    return client


def create_user(
    session: Session,
    username: str,
    role: str,
    password: str,
    now: datetime,
    client: str | None = None,
) -> User:
    if not _USERNAME.match(username):
        raise UserError(
            translate("user name %(name)r is not allowed", name=username),
            hint=gettext("use 2-64 lower-case letters, digits, '.', '_' or '-'"),
        )
    try:
        parsed_role = Role(role)
    except ValueError:
        raise UserError(
            translate("unknown role %(role)r", role=role),
            hint=translate("use one of %(roles)s", roles=", ".join(r.value for r in Role)),
        ) from None
    client_id = client_for(parsed_role, client)
    weak = password_problem(password, username)
    if weak is not None:
        head, _, advice = weak.partition(": ")
        raise UserError(
            head,
            hint=advice or translate("use at least %(n)s characters", n=MIN_PASSWORD_LENGTH),
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(
            translate("user %(name)r already exists", name=username),
            hint=gettext("pick another user name"),
        )
    user = User(
        username=username,
        role=parsed_role,
        password_hash=_hasher.hash(password),
        created_at=now,
        disabled=False,
        client_id=client_id,
    )
    session.add(user)
    session.commit()
    return user


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except Exception:  # argon2 raises VerifyMismatchError and friends
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


def burn_verify(password: str) -> None:
    """The work of checking a password, against no account: an unknown name costs the same."""
    with contextlib.suppress(Exception):  # a mismatch is the expected outcome
        _hasher.verify(_dummy_hash(), password)

"""Creating accounts. Passwords are stored only as argon2id hashes."""

from __future__ import annotations

import re
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.models import Role, User
from api.errors import UserError

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def create_user(session: Session, username: str, role: str, password: str, now: datetime) -> User:
    if not _USERNAME.match(username):
        raise UserError(
            f"user name {username!r} is not allowed",
            hint="use 2-64 lower-case letters, digits, '.', '_' or '-'",
        )
    try:
        parsed_role = Role(role)
    except ValueError:
        raise UserError(
            f"unknown role {role!r}", hint=f"use one of {', '.join(r.value for r in Role)}"
        ) from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError("password too short", hint=f"use at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists", hint="pick another user name")
    user = User(
        username=username,
        role=parsed_role,
        password_hash=_hasher.hash(password),
        created_at=now,
        disabled=False,
    )
    session.add(user)
    session.commit()
    return user


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except Exception:  # argon2 raises VerifyMismatchError and friends
        return False

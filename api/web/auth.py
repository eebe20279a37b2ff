"""Who is calling the API: bearer tokens for API clients, and role checks.

Every endpoint states the roles it admits, and the check runs on the server
for every request; the console's session cookies will build on the same
`current_user` dependency.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts.models import ApiToken, Role, User
from api.accounts.sessions import COOKIE, session_user

TOKEN_PREFIX = "dg_"  # noqa: S105 - a label that makes leaked tokens easy to scan for


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str, now: datetime) -> str:
    """A new token for `user`; shown once, stored only as its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_digest(token), created_at=now))
    session.commit()
    return token


def authenticate(session: Session, token: str, now: datetime) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    ).first()
    if found is None:
        return None
    api_token, user = found
    if user.disabled:
        return None
    api_token.last_used_at = now
    session.commit()
    return user


def current_user(request: Request) -> User:
    """The authenticated user, or a 401 problem.

    API clients send a bearer token. The console's session cookie is taken
    for reads (GET, HEAD) only, so a page elsewhere cannot make a logged-in
    browser change anything (CSRF); the console's own forms carry a token.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    cookie = request.cookies.get(COOKIE)
    if not header and cookie and request.method in ("GET", "HEAD"):
        services = request.app.state.services
        with services.sessions() as session:
            found = session_user(session, cookie, services.clock())
            if found is not None:
                return found[0]
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            401, "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
        )
    services = request.app.state.services
    with services.sessions() as session:
        user = authenticate(session, token.strip(), services.clock())
    if user is None:
        raise HTTPException(
            401,
            "the token is unknown, revoked or its account disabled",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return user


def require(*roles: Role) -> Callable[..., User]:
    """A dependency admitting only `roles`; others get 403."""

    def check(user: User = Depends(current_user)) -> User:  # noqa: B008 - FastAPI's idiom
        if user.role not in roles:
            raise HTTPException(403, f"the {user.role.value} role may not do this")
        return user

    return check


def client_scope(user: User, asked: str | None) -> str | None:
    """The client a query is limited to: an auditor's own, whatever was asked; else as asked."""
    if user.role is not Role.AUDITOR:
        return asked
    if user.client_id is None:
        raise HTTPException(403, "this auditor account is not assigned to a client")
    if asked not in (None, user.client_id):
        raise HTTPException(403, "an auditor sees only the calls of their own client")
    return user.client_id

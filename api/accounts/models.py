"""Tables of people's accounts: users, API tokens, console sessions, login failures and sources."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.i18n import N_, gettext
from recording.db.engine import Base


class Role(enum.StrEnum):
    AGENT = "agent"
    QA = "qa"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"


_ROLE_WORDS = {
    Role.AGENT: N_("agent"),
    Role.QA: N_("qa"),
    Role.SUPERVISOR: N_("supervisor"),
    Role.ADMIN: N_("admin"),
    Role.AUDITOR: N_("auditor"),
}


def role_word(role: Role | str) -> str:
    """A role as the reader reads it; the role's value stays the code in forms and the API."""
    try:
        return gettext(_ROLE_WORDS[Role(role)])
    except ValueError:
        return str(role)


class User(Base):
    """One account per person: shared logins would make the audit trail worthless."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: An auditor of the client bank sees only that client's calls.
    client_id: Mapped[str | None] = mapped_column(String(64))
    #: The TOTP secret, sealed with the key ring; None until enrolled.
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The time step of the last code accepted: a code works once.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    #: zh_CN or en, from the console's language switch; None: the browser's, else the site's.
    language: Mapped[str | None] = mapped_column(String(16))


class ApiToken(Base):
    """A bearer token for API clients; only its SHA-256 is stored (tokens are random)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A console login: the cookie holds a random id, this row only its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """One failed login (unknown name, wrong password or code), by the name typed and where from."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The client's address; None for failures recorded before sources were kept.
    source: Mapped[str | None] = mapped_column(String(64), index=True)


class LoginSource(Base):
    """An address an account has logged in from: a source in good standing for that account."""

    __tablename__ = "login_sources"
    __table_args__ = (UniqueConstraint("username", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    last_ok: Mapped[datetime] = mapped_column(DateTime(timezone=True))

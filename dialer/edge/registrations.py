"""Where agents' softphones are registered, read from Kamailio's `location` table.

Kamailio writes datetimes its own way per database: db_postgres as a naive
timestamp in the edge host's local time, db_sqlite as a Julian day number
(REAL, e.g. 2461382.04), which SQLAlchemy's DateTime cannot read. This
reads both and answers in UTC. An `expires` at the epoch is a permanent
registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

_EPOCH_JD = 2440587.5  # the Julian day of 1970-01-01 00:00 UTC


@dataclass(frozen=True)
class Contact:
    username: str
    contact: str
    expires: datetime | None  # UTC; None: permanent
    user_agent: str


def _from_julian(day: float) -> datetime:
    return datetime.fromtimestamp((day - _EPOCH_JD) * 86400.0, UTC)


def _as_utc(value: object) -> datetime:
    if isinstance(value, int | float):
        return _from_julian(float(value))
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"not a Kamailio datetime: {value!r}")
    if value.tzinfo is None:
        value = value.astimezone()  # naive: the edge host's local time
    return value.astimezone(UTC)


def live_contacts(session: Session, username: str, now: datetime) -> list[Contact]:
    """The agent's registrations that have not expired at `now`, newest expiry first."""
    rows = session.execute(
        text("SELECT username, contact, expires, user_agent FROM location WHERE username = :u"),
        {"u": username},
    ).all()
    found: list[Contact] = []
    for user, contact, raw, agent in rows:
        expires = _as_utc(raw)
        permanent = expires <= datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
        if permanent or expires > now:
            found.append(Contact(user, contact, None if permanent else expires, agent or ""))
    return sorted(found, key=lambda c: c.expires or datetime.max.replace(tzinfo=UTC), reverse=True)

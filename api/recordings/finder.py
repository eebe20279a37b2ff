"""Finding recordings by case, debtor, agent, client and date, without opening anything sealed.

A recording row knows its agent, its client and, when it was tagged, the
account reference it belongs to (`recordings.debtor_id`); a call placed by
the dialer knows only the keyed hash of the number it dialed
(`call_attempts.number_key`). Debtors' numbers are kept sealed too, each
beside the same keyed hash. So:

- a **case** is the account reference the client's collection system gives
  a debtor (`debtors.external_id`, e.g. ``ACC-0001``; narrowed to one client
  by `client`). It finds the recordings tagged with it, and the recordings of
  calls to any number on that account, matched by keyed hash;
- a **debtor** is typed as one of their phone numbers. It is hashed with the
  site's number key (never compared in clear) and finds the calls to that
  number, and every recording of the accounts that list it (their other
  numbers' calls and their tagged recordings).

Nothing is decrypted to search, and the number itself never reaches a query,
a log or an audit entry. Pages run newest first on a keyset cursor, so a page
is as fast at the ten-thousandth recording as at the first.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from dialer.debtors import Debtor, DebtorNumber
from dialer.models import CallAttempt
from recording.db.engine import as_utc
from recording.models import Recording

MAX_LIMIT = 200


class BadCursor(ValueError):
    """A cursor this server did not hand out (or one edited by hand)."""


@dataclass(frozen=True)
class Cursor:
    """Where the last page ended: the newest-first order is (recorded_at, id) descending."""

    recorded_at: datetime
    id: str

    def encode(self) -> str:
        text = f"{as_utc(self.recorded_at).isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            at, _, rid = raw.partition("|")
            moment = datetime.fromisoformat(at).astimezone(UTC)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise BadCursor("the cursor is not one this server handed out") from None
        if not at.endswith("+00:00") or len(rid) != 32 or set(rid) - set("0123456789abcdef"):
            raise BadCursor("the cursor is not one this server handed out")
        return cls(moment, rid)


@dataclass(frozen=True)
class RecordingQuery:
    """What to look for; every field left None is not a filter.

    `number_key` is the keyed hash of the debtor's number, computed by the
    caller with the site's number key. `client_tagged_only` is for auditors:
    they see the recordings tagged with their client and nothing reached
    through a number, as everywhere else in the API.
    """

    agent: str | None = None
    client: str | None = None
    case: str | None = None
    number_key: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    cursor: Cursor | None = None
    limit: int = 50
    client_tagged_only: bool = False


@dataclass(frozen=True)
class Found:
    id: str
    call_id: str
    agent: str
    client_id: str | None
    debtor_id: str | None
    recorded_at: datetime
    duration_s: float
    status: str
    legal_hold: bool


@dataclass(frozen=True)
class Page:
    recordings: list[Found]
    next_cursor: str | None


def _linked(accounts: Select[Any]) -> ColumnElement[bool]:
    """Recordings of these accounts: calls to any of their numbers, or tagged with them."""
    numbers = select(DebtorNumber.number_key).where(DebtorNumber.debtor_id.in_(accounts))
    by_call = select(CallAttempt.recording_id).where(
        CallAttempt.number_key.in_(numbers), CallAttempt.recording_id.is_not(None)
    )
    tagged = exists().where(
        Debtor.id.in_(accounts),
        Debtor.external_id == Recording.debtor_id,
        or_(Recording.client_id.is_(None), Recording.client_id == Debtor.client_id),
    )
    return or_(Recording.id.in_(by_call), tagged)


def _utc(moment: datetime) -> datetime:
    # SQLite keeps no offset: every stored time is UTC, so every bound must be too.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def statement(query: RecordingQuery) -> Select[Any]:
    """The SELECT for one page (one row more than the limit, to know whether more follow)."""
    conditions: list[ColumnElement[bool]] = []
    if query.agent is not None:
        conditions.append(Recording.agent == query.agent)
    if query.client is not None:
        if query.client_tagged_only:
            conditions.append(Recording.client_id == query.client)
        else:
            # A dialed call is tagged with no client: it is the client's through its number.
            client_accounts = select(Debtor.id).where(Debtor.client_id == query.client)
            conditions.append(
                or_(
                    Recording.client_id == query.client,
                    and_(Recording.client_id.is_(None), _linked(client_accounts)),
                )
            )
    if query.case is not None:
        accounts = select(Debtor.id).where(Debtor.external_id == query.case)
        if query.client is not None:
            accounts = accounts.where(Debtor.client_id == query.client)
        conditions.append(or_(Recording.debtor_id == query.case, _linked(accounts)))
    if query.number_key is not None:
        holders = select(DebtorNumber.debtor_id).where(DebtorNumber.number_key == query.number_key)
        dialed = select(CallAttempt.recording_id).where(
            CallAttempt.number_key == query.number_key, CallAttempt.recording_id.is_not(None)
        )
        conditions.append(or_(Recording.id.in_(dialed), _linked(holders)))
    if query.date_from is not None:
        conditions.append(Recording.recorded_at >= _utc(query.date_from))
    if query.date_to is not None:
        conditions.append(Recording.recorded_at < _utc(query.date_to))
    if query.cursor is not None:
        at = query.cursor.recorded_at
        conditions.append(
            or_(
                Recording.recorded_at < at,
                and_(Recording.recorded_at == at, Recording.id < query.cursor.id),
            )
        )
    return (
        select(Recording)
        .where(*conditions)
        .order_by(Recording.recorded_at.desc(), Recording.id.desc())
        .limit(query.limit + 1)
    )


def find_recordings(session: Session, query: RecordingQuery) -> Page:
    """One page of recordings, newest first, and the cursor of the next (None at the end)."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1-{MAX_LIMIT}")
    rows: list[Recording] = list(session.scalars(statement(query)))
    found = [
        Found(
            id=row.id,
            call_id=row.call_id,
            agent=row.agent,
            client_id=row.client_id,
            debtor_id=row.debtor_id,
            recorded_at=as_utc(row.recorded_at),
            duration_s=row.duration_s,
            status=row.status.value,
            legal_hold=row.legal_hold,
        )
        for row in rows[: query.limit]
    ]
    more = len(rows) > query.limit
    last = found[-1] if found else None
    next_cursor = Cursor(last.recorded_at, last.id).encode() if more and last else None
    return Page(found, next_cursor)

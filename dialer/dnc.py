"""Do-not-call lists: read from CSV, checked before the call policy.

A number is on the list for everyone (global: the person asked never to be
called, a regulator's list), for one client's debts, or for one debtor (a
debtor who asked to be reached in writing only). Entries hold the keyed
hash of the number and a masked form, like call attempts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dialer.models import DncEntry
from dialer.numbers import MalformedNumber, mask, normalize

MAX_ROWS = 1_000_000


class Scope(StrEnum):
    GLOBAL = "global"
    CLIENT = "client"
    DEBTOR = "debtor"


@dataclass(frozen=True)
class DncRow:
    e164: str
    scope: Scope
    scope_id: str
    reason: str


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


def parse_csv(
    text: str,
    region: str,
    scope: Scope = Scope.GLOBAL,
    scope_id: str = "",
    *,
    allow_vanity: bool = False,
) -> tuple[list[DncRow], list[RowError]]:
    """Rows of `number[,reason]` (a header line naming `number` is allowed), each checked.

    Pure: every bad row is reported with its line number and nothing is
    dropped silently, so the operator can fix the file and import it again.
    """
    if (scope is Scope.GLOBAL) != (scope_id == ""):
        raise ValueError("a client or debtor list needs its id; a global list takes none")
    rows: list[DncRow] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for line, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record or not "".join(record).strip():
            continue
        raw = record[0].strip()
        if line == 1 and raw.lower() in ("number", "phone", "号码"):
            continue
        if line > MAX_ROWS:
            errors.append(RowError(line, f"more than {MAX_ROWS} rows; split the file"))
            break
        try:
            e164 = normalize(raw, region, allow_vanity=allow_vanity)
        except MalformedNumber as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if e164 in seen:
            continue
        seen.add(e164)
        reason = record[1].strip()[:200] if len(record) > 1 else ""
        rows.append(DncRow(e164, scope, scope_id, reason or "listed"))
    return rows, errors


def add_entries(
    session: Session,
    rows: Iterable[DncRow],
    key: Callable[[str], str],
    source: str,
    actor: str,
    now: datetime,
) -> tuple[int, int]:
    """(added, already listed); the caller commits, so an import lands whole or not at all."""
    added = known = 0
    for row in rows:
        number_key = key(row.e164)
        exists = session.scalar(
            select(DncEntry.id).where(
                DncEntry.number_key == number_key,
                DncEntry.scope == row.scope.value,
                DncEntry.scope_id == row.scope_id,
            )
        )
        if exists:
            known += 1
            continue
        session.add(
            DncEntry(
                number_key=number_key,
                number_masked=mask(row.e164),
                scope=row.scope.value,
                scope_id=row.scope_id,
                reason=row.reason,
                source=source[:200],
                added_by=actor,
                added_at=now,
            )
        )
        session.flush()
        added += 1
    return added, known


def listed(
    session: Session, number_key: str, client_id: str | None = None, debtor_id: str | None = None
) -> DncEntry | None:
    """The entry that forbids calling this number for this client and debtor, if any.

    A debtor's list is named by the debtor's account id (`D-1`: that id at any
    client, the safe reading when ids repeat across clients) or by client and
    account id (`bank-a/D-1`: that debtor only).
    """
    scopes = [DncEntry.scope == Scope.GLOBAL.value]
    if client_id:
        scopes.append((DncEntry.scope == Scope.CLIENT.value) & (DncEntry.scope_id == client_id))
    if debtor_id:
        names = [debtor_id, f"{client_id}/{debtor_id}"] if client_id else [debtor_id]
        scopes.append((DncEntry.scope == Scope.DEBTOR.value) & DncEntry.scope_id.in_(names))
    return session.scalar(
        select(DncEntry).where(DncEntry.number_key == number_key, or_(*scopes)).limit(1)
    )


def remove(session: Session, number_key: str, scope: Scope, scope_id: str = "") -> bool:
    entry = session.scalar(
        select(DncEntry).where(
            DncEntry.number_key == number_key,
            DncEntry.scope == scope.value,
            DncEntry.scope_id == scope_id,
        )
    )
    if entry is None:
        return False
    session.delete(entry)
    return True

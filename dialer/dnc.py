"""Do-not-call lists: read from CSV or Excel, checked before the call policy.

A number is on the list for everyone (global: the person asked never to be
called, a regulator's list), for one client's debts, or for one debtor (a
debtor who asked to be reached in writing only). Entries hold the keyed
hash of the number and a masked form, like call attempts.

A list file is ``number[,reason]`` with or without a header; a header may
name its columns in Chinese or English (号码/手机号/number, 原因/备注/reason,
the table in `dialer.columns`), in any order, and other columns are named in
a warning and left out. CSV may be UTF-8, UTF-8 with a BOM or GBK, and .xlsx
is read as `dialer.sheets` reads any bank's file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dialer.columns import map_dnc_headers
from dialer.models import DncEntry
from dialer.numbers import MalformedNumber, mask, normalize
from dialer.said import Said, said
from dialer.sheets import Kind, Sheet, read_sheet

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
    """A refused line: `message` in English, `said` for `api` to say in the reader's language."""

    line: int
    said: Said

    @property
    def message(self) -> str:
        return self.said.text


@dataclass(frozen=True)
class DncFile:
    """A list file read and checked: the rows to add, every bad row, and what was left out."""

    rows: list[DncRow]
    errors: list[RowError]
    warnings: list[Said] = field(default_factory=list)
    encoding: str = ""


def parse_csv(
    text: str,
    region: str,
    scope: Scope = Scope.GLOBAL,
    scope_id: str = "",
    *,
    allow_vanity: bool = False,
) -> tuple[list[DncRow], list[RowError]]:
    """Rows of `number[,reason]` (a header line naming its columns is allowed), each checked.

    Pure: every bad row is reported with its line number and nothing is
    dropped silently, so the operator can fix the file and import it again.
    """
    read = check_rows(
        read_sheet(text, Kind.CSV, max_rows=MAX_ROWS + 1),
        region,
        scope,
        scope_id,
        allow_vanity=allow_vanity,
    )
    return read.rows, read.errors


def parse_file(
    data: bytes,
    region: str,
    scope: Scope = Scope.GLOBAL,
    scope_id: str = "",
    *,
    kind: Kind = Kind.CSV,
    encoding: str = "auto",
    allow_vanity: bool = False,
) -> DncFile:
    """A CSV (UTF-8, UTF-8 with BOM, GBK) or .xlsx list; raises `SheetError` when unreadable."""
    sheet = read_sheet(data, kind, encoding, max_rows=MAX_ROWS + 1)
    return check_rows(sheet, region, scope, scope_id, allow_vanity=allow_vanity)


def _columns(
    records: list[tuple[int, list[object]]], warnings: list[Said]
) -> tuple[list[tuple[int, list[object]]], int, int, RowError | None]:
    """(data rows, number column, reason column, refusal): the header read when there is one."""
    if not records:
        return records, 0, 1, None
    first = [str(c) for c in records[0][1]]
    header = map_dnc_headers(first)
    if header is None:
        return records, 0, 1, None
    line = records[0][0]
    number_at, reason_at, unknown = header
    named = ", ".join(repr(u[:30]) for u in unknown)
    if number_at < 0:
        return [], 0, 1, RowError(line, said("dnc.no_number_column", line=line, columns=named))
    if unknown:
        warnings.append(said("dnc.not_imported", columns=named))
    return records[1:], number_at, -1 if reason_at is None else reason_at, None


def check_rows(
    sheet: Sheet,
    region: str,
    scope: Scope = Scope.GLOBAL,
    scope_id: str = "",
    *,
    allow_vanity: bool = False,
) -> DncFile:
    if (scope is Scope.GLOBAL) != (scope_id == ""):
        raise ValueError("a client or debtor list needs its id; a global list takes none")
    rows: list[DncRow] = []
    warnings = list(sheet.notes)
    seen: set[str] = set()
    records, number_at, reason_at, refused = _columns(sheet.rows, warnings)
    if refused is not None:
        return DncFile([], [refused], warnings, sheet.encoding)
    errors = [
        RowError(problem.line, problem.said)
        for problem in sheet.problems
        if problem.column in (number_at, reason_at)
    ]
    unreadable = {e.line for e in errors}
    for count, (line, cells) in enumerate(records, start=1):
        if count > MAX_ROWS:
            errors.append(RowError(line, said("sheet.too_many_rows", max_rows=MAX_ROWS)))
            break
        if line in unreadable:
            continue
        raw = str(cells[number_at]).strip() if number_at < len(cells) else ""
        if not raw:
            errors.append(RowError(line, said("dnc.no_number")))
            continue
        try:
            e164 = normalize(raw, region, allow_vanity=allow_vanity)
        except MalformedNumber as exc:
            errors.append(RowError(line, exc.said))
            continue
        if e164 in seen:
            continue
        seen.add(e164)
        reason = str(cells[reason_at]).strip()[:200] if 0 <= reason_at < len(cells) else ""
        rows.append(DncRow(e164, scope, scope_id, reason or "listed"))
    errors.sort(key=lambda e: e.line)
    return DncFile(rows, errors, warnings, sheet.encoding)


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

"""Bulk import of debtors from the collection system's CSV or JSON export.

An import is all or nothing: every row is validated before anything is
written, and one bad row means nothing is written and every bad row comes
back with its line and field (`error_csv`), so the operator fixes the file
once and sends it again. A good file is written in one transaction, in
batches of bulk statements so that 50,000 accounts take seconds, and a
failure half way (a lost connection, a concurrent writer) rolls all of it
back.

CSV has a header naming its columns: ``client, external_id, name, stage,
timezone, numbers, callback_windows`` (``timezone`` and
``callback_windows`` may be left out). ``numbers`` is
``role:number;role:number``; ``callback_windows`` is
``Mon-Fri 18:00-20:00; Sat 10:00-12:00`` or the JSON list. JSON is a list of
objects with the same keys (or ``{"debtors": [...]}``), where ``numbers``
may also be a list of ``{"role", "number"}``. Lines are physical lines of
the CSV (the header is line 1) or 1-based positions in the JSON list.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialer.debtors.sealing import Sealer
from dialer.debtors.store import upsert
from dialer.debtors.validation import DebtorIn, validate_row
from dialer.errors import DialerError

MAX_ROWS = 500_000
BATCH_SIZE = 2_000
PROGRESS_EVERY = 5_000
COLUMNS = ("client", "external_id", "name", "stage", "timezone", "numbers", "callback_windows")
REQUIRED_COLUMNS = ("client", "external_id", "name", "stage", "numbers")

#: Told (phase, rows done, rows in all) as the import goes; phase is "validated" or "written".
Progress = Callable[[str, int, int], None]


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


class ImportConflict(DialerError):
    """The database refused the import as a whole (another writer raced it); nothing was kept."""

    hint = "import the file again"


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused: a line of the error file."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _FileError(f"the file is not UTF-8 text (bad byte at offset {exc.start})") from None


class _FileError(ValueError):
    """The file as a whole cannot be read: reported as line 0, field "file"."""


def _csv_records(text: str) -> list[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _FileError("the file is empty; it needs a header line") from None
    except csv.Error as exc:
        raise _FileError(f"line 1 is not CSV ({exc})") from None
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise _FileError(
            f"unknown column(s) {', '.join(repr(n[:30]) for n in unknown)} in the header; "
            f"use {', '.join(COLUMNS)}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise _FileError(f"the header lacks column(s) {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise _FileError("the header names a column twice")
    records: list[tuple[int, dict[str, object]]] = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(records) >= MAX_ROWS:
                raise _FileError(f"more than {MAX_ROWS} rows; split the file")
            row: dict[str, object] = dict(zip(names, cells, strict=False))
            if len(cells) > len(names):
                row["__extra__"] = True
            records.append((line, row))
    except csv.Error as exc:
        raise _FileError(f"line {reader.line_num} is not CSV ({exc})") from None
    return records


def _json_records(text: str) -> list[tuple[int, dict[str, object]]]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise _FileError(f"the file is not JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("debtors"), list):
        data = data["debtors"]
    if not isinstance(data, list):
        raise _FileError('the JSON must be a list of debtors or {"debtors": [...]}')
    if len(data) > MAX_ROWS:
        raise _FileError(f"more than {MAX_ROWS} rows; split the file")
    return [
        (n, item if isinstance(item, dict) else {"__not_object__": True})
        for n, item in enumerate(data, start=1)
    ]


def read_records(data: bytes | str, fmt: Format) -> list[tuple[int, dict[str, object]]]:
    """(line, raw row) pairs; raises `_FileError` when the file as a whole is unreadable."""
    text = _decode(data)
    return _csv_records(text) if fmt is Format.CSV else _json_records(text)


def validate(
    records: list[tuple[int, dict[str, object]]],
    region: str,
    progress: Progress = _no_progress,
    *,
    allow_vanity: bool = False,
) -> tuple[list[DebtorIn], list[RowError]]:
    """Every row checked, duplicates of an account included; pure."""
    good: list[DebtorIn] = []
    errors: list[RowError] = []
    first_seen: dict[tuple[str, str], int] = {}
    total = len(records)
    for done, (line, raw) in enumerate(records, start=1):
        if raw.get("__not_object__"):
            errors.append(RowError(line, "row", "each debtor must be a JSON object"))
        elif raw.get("__extra__"):
            errors.append(RowError(line, "row", "has more cells than the header has columns"))
        else:
            checked = validate_row(raw, region, allow_vanity=allow_vanity)
            if isinstance(checked, list):
                errors.extend(RowError(line, e.field, e.message) for e in checked)
            else:
                account = (checked.client_id, checked.external_id)
                if account in first_seen:
                    errors.append(
                        RowError(
                            line,
                            "external_id",
                            f"external_id repeats the account on line {first_seen[account]}",
                        )
                    )
                else:
                    first_seen[account] = line
                    good.append(checked)
        if done % PROGRESS_EVERY == 0 or done == total:
            progress("validated", done, total)
    return good, errors


def import_debtors(
    sessions: sessionmaker[Session],
    data: bytes | str,
    fmt: Format,
    sealer: Sealer,
    region: str,
    now: datetime,
    progress: Progress = _no_progress,
    batch_size: int = BATCH_SIZE,
    *,
    allow_vanity: bool = False,
) -> ImportResult:
    """Validate all of `data`, then write all of it in one transaction, or nothing.

    Returns the counts, or the row errors (with nothing written). Raises
    `ImportConflict` when the database refuses the write as a whole.
    """
    try:
        records = read_records(data, fmt)
    except _FileError as exc:
        return ImportResult(0, errors=[RowError(0, "file", str(exc))])
    debtors, errors = validate(records, region, progress, allow_vanity=allow_vanity)
    if errors:
        return ImportResult(len(records), errors=errors)
    created = updated = 0
    with sessions() as session:
        try:
            for start in range(0, len(debtors), batch_size):
                counts = upsert(session, debtors[start : start + batch_size], sealer, now)
                created += counts.created
                updated += counts.updated
                progress("written", min(start + batch_size, len(debtors)), len(debtors))
            session.commit()
        except IntegrityError:
            session.rollback()
            raise ImportConflict(
                "another import or update wrote some of the same accounts at the same time; "
                "nothing was imported"
            ) from None
    return ImportResult(len(records), created, updated)


def error_csv(errors: list[RowError]) -> str:
    """The error file: ``line,field,message``, one row per problem, in file order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("line", "field", "message"))
    writer.writerows((e.line, e.field, e.message) for e in errors)
    return out.getvalue()


def write_error_file(errors: list[RowError], path: Path) -> None:
    path.write_text(error_csv(errors), encoding="utf-8")


def guess_format(name: str | None, content_type: str | None) -> Format | None:
    """The format from a file name or a media type; None when neither says."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return Format.CSV
    if media == "application/json":
        return Format.JSON
    suffix = Path(name or "").suffix.lower()
    return {".csv": Format.CSV, ".json": Format.JSON}.get(suffix)

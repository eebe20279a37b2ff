"""Bulk import of debtors from the collection system's CSV or JSON export.

An import is all or nothing: every row is validated before anything is
written, and one bad row means nothing is written and every bad row comes
back with its line and field (`error_csv`), so the operator fixes the file
once and sends it again. A good file is written in one transaction, in
batches of bulk statements so that 50,000 accounts take seconds, and a
failure half way (a lost connection, a concurrent writer) rolls all of it
back.

CSV and Excel (.xlsx) files have a header naming their columns: ``client,
external_id, name, stage, timezone, numbers, callback_windows``
(``timezone`` and ``callback_windows`` may be left out), or the Chinese and
English names banks use (姓名, 手机号, 账号, 逾期天数, ...), each mapped by
the one table in `dialer.columns` (docs/imports.md). A CSV may be UTF-8,
UTF-8 with a BOM or GBK/GB18030, detected or declared (`dialer.sheets`).
``numbers`` is
``role:number;role:number``; ``callback_windows`` is
``Mon-Fri 18:00-20:00; Sat 10:00-12:00`` or the JSON list. JSON is a list of
objects with the same keys (or ``{"debtors": [...]}``), where ``numbers``
may also be a list of ``{"role", "number"}``. Lines are physical lines of
the CSV (the header is line 1), rows of the worksheet, or 1-based positions
in the JSON list. Errors name the column as the file's own header does (and
its letter in a workbook), so the operator finds the cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dialer import columns
from dialer.columns import HeaderMap, debtor_row, map_debtor_headers
from dialer.debtors.sealing import Sealer
from dialer.debtors.store import upsert
from dialer.debtors.validation import DebtorIn, validate_row
from dialer.errors import DialerError
from dialer.said import Said, said
from dialer.sheets import Kind, SheetError, read_sheet

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
    XLSX = "xlsx"


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportConflict(DialerError):
    """The database refused the import as a whole (another writer raced it); nothing was kept."""

    hint = "import the file again"


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused: a line of the error file.

    `field` is the column as the file names it (or ``row``, or ``file`` on
    line 0); `message` is the English sentence and `said` the problem as a
    code, for `api` to say with the line and column in the reader's language.
    """

    line: int
    field: str
    message: str
    said: Said | None = None


@dataclass(frozen=True)
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    #: What the operator should know though nothing was refused (columns not stored, ...).
    warnings: list[Said] = field(default_factory=list)
    #: The encoding the file was read in ("utf-8", "gb18030", "xlsx", ...).
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


class _FileError(ValueError):
    """The file as a whole cannot be read: reported as line 0, field "file", once per reason."""

    def __init__(self, *reasons: Said) -> None:
        super().__init__("; ".join(r.text for r in reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class Records:
    """(line, raw row) pairs and what the file told about itself."""

    rows: list[tuple[int, dict[str, object]]]
    #: canonical field -> how the file names that column (its header, and letter in a workbook)
    columns: dict[str, str] = field(default_factory=dict)
    problems: list[RowError] = field(default_factory=list)
    warnings: list[Said] = field(default_factory=list)
    encoding: str = ""
    chinese: bool = False


def _labels(header: HeaderMap, letters: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for target in (*columns.DEBTOR_REQUIRED, columns.STAGE, columns.NUMBERS, columns.TIMEZONE):
        name = header.column_of(target)
        if letters is not None and name in header.names:
            name = f"{name} ({letters[header.names.index(name)]})"
        labels[target] = name
    labels[columns.CALLBACK_WINDOWS] = header.column_of(columns.CALLBACK_WINDOWS)
    return labels


def _table_records(data: bytes | str, fmt: Format, encoding: str) -> Records:
    try:
        sheet = read_sheet(data, Kind(fmt.value), encoding, max_rows=MAX_ROWS)
    except SheetError as exc:
        raise _FileError(exc.said) from None
    if not sheet.rows:
        raise _FileError(said("row.empty_file"))
    _, header_cells = sheet.rows[0]
    names = [str(c) for c in header_cells]
    while names and not names[-1].strip():
        names.pop()
    letters = [sheet.column_name(i) for i in range(len(names))]
    header = map_debtor_headers(names, [sheet.column_said(i) for i in range(len(names))])
    if header.problems:
        raise _FileError(*header.problems)
    labels = _labels(header, letters if sheet.kind is Kind.XLSX else None)
    problems = [
        RowError(
            p.line,
            _cell_label(header.names, letters, p.column, sheet.column_name(p.column)),
            p.message,
            p.said,
        )
        for p in sheet.problems
        if p.column >= len(header.fields) or header.fields[p.column] != columns.NOT_STORED
    ]
    rows: list[tuple[int, dict[str, object]]] = []
    for line, cells in sheet.rows[1:]:
        row = debtor_row(header, cells)
        if any(str(c).strip() for c in cells[len(names) :]):
            row["__extra__"] = True
        rows.append((line, row))
    return Records(
        rows, labels, problems, [*sheet.notes, *header.notes], sheet.encoding, header.chinese
    )


def _cell_label(names: tuple[str, ...], letters: list[str], column: int, fallback: str) -> str:
    if column >= len(names):
        return fallback
    return f"{names[column]} ({letters[column]})" if letters[column] != names[column] else fallback


def _json_records(text: str) -> list[tuple[int, dict[str, object]]]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise _FileError(said("row.not_json", problem=str(exc)[:200])) from None
    if isinstance(data, dict) and isinstance(data.get("debtors"), list):
        data = data["debtors"]
    if not isinstance(data, list):
        raise _FileError(said("row.json_shape"))
    if len(data) > MAX_ROWS:
        raise _FileError(said("sheet.too_many_rows", max_rows=MAX_ROWS))
    return [
        (n, item if isinstance(item, dict) else {"__not_object__": True})
        for n, item in enumerate(data, start=1)
    ]


def read_records(data: bytes | str, fmt: Format, encoding: str = "auto") -> Records:
    """The file's rows; raises `_FileError` when the file as a whole is unreadable."""
    if fmt is Format.JSON:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise _FileError(said("row.json_not_utf8", offset=exc.start)) from None
        return Records(_json_records(data), encoding="utf-8")
    return _table_records(data, fmt, encoding)


def validate(
    records: list[tuple[int, dict[str, object]]],
    region: str,
    progress: Progress = _no_progress,
    *,
    allow_vanity: bool = False,
    named: Mapping[str, str] | None = None,
) -> tuple[list[DebtorIn], list[RowError]]:
    """Every row checked, duplicates of an account included; pure.

    `named` gives the file's own name of each field's column, so an error
    says 手机号 (C) where the bank's file says so.
    """
    label = dict(named or {})
    good: list[DebtorIn] = []
    errors: list[RowError] = []
    first_seen: dict[tuple[str, str], int] = {}
    total = len(records)
    for done, (line, raw) in enumerate(records, start=1):
        if raw.get("__not_object__"):
            not_object = said("row.not_object")
            errors.append(RowError(line, "row", not_object.text, not_object))
        elif raw.get("__extra__"):
            extra = said("row.extra_cells")
            errors.append(RowError(line, "row", extra.text, extra))
        else:
            bad_overdue = bool(raw.get(columns.BAD_OVERDUE))
            if bad_overdue:
                stage = label.get(columns.STAGE, columns.STAGE)
                days = said("row.days")
                errors.append(RowError(line, stage, f"{stage} {days.text}", days))
            # with a bad day count, the row's other fields are still checked
            row = {**raw, columns.STAGE: "m0"} if bad_overdue else raw
            checked = validate_row(row, region, allow_vanity=allow_vanity)
            if isinstance(checked, list):
                errors.extend(
                    RowError(line, label.get(e.field, e.field), e.message, e.said) for e in checked
                )
            elif bad_overdue:
                pass
            else:
                account = (checked.client_id, checked.external_id)
                if account in first_seen:
                    repeats = said("row.repeats", line=first_seen[account])
                    errors.append(
                        RowError(
                            line,
                            label.get("external_id", "external_id"),
                            f"external_id {repeats.text}",
                            repeats,
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
    encoding: str = "auto",
) -> ImportResult:
    """Validate all of `data`, then write all of it in one transaction, or nothing.

    Returns the counts, or the row errors (with nothing written). Raises
    `ImportConflict` when the database refuses the write as a whole.
    `encoding` is how a CSV's bytes are read: auto, utf-8 or gbk.
    """
    try:
        read = read_records(data, fmt, encoding)
    except _FileError as exc:
        return ImportResult(0, errors=[RowError(0, "file", r.text, r) for r in exc.reasons])
    records = read.rows
    debtors, errors = validate(
        records, region, progress, allow_vanity=allow_vanity, named=read.columns
    )
    unreadable = {(p.line, p.field) for p in read.problems}  # said once, by the cell's problem
    errors = sorted(
        [*read.problems, *(e for e in errors if (e.line, e.field) not in unreadable)],
        key=lambda e: e.line,
    )
    if errors:
        return ImportResult(
            len(records), errors=errors, warnings=read.warnings, encoding=read.encoding
        )
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
    return ImportResult(
        len(records), created, updated, warnings=read.warnings, encoding=read.encoding
    )


def _english(error: RowError) -> str:
    return error.message


def error_csv(errors: list[RowError], say: Callable[[RowError], str] = _english) -> str:
    """The error file: ``line,field,message``, one row per problem, in file order.

    The header stays as scripts read it; `say` gives each message (`api`
    passes one that speaks the reader's language).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("line", "field", "message"))
    writer.writerows((e.line, e.field, say(e)) for e in errors)
    return out.getvalue()


def write_error_file(
    errors: list[RowError], path: Path, say: Callable[[RowError], str] = _english
) -> None:
    """With a BOM, so Excel on a Chinese desktop opens the messages and column names readable."""
    path.write_text(error_csv(errors, say), encoding="utf-8-sig")


def guess_format(name: str | None, content_type: str | None) -> Format | None:
    """The format from a file name or a media type; None when neither says."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return Format.CSV
    if media == "application/json":
        return Format.JSON
    if media == XLSX_MEDIA_TYPE:
        return Format.XLSX
    suffix = Path(name or "").suffix.lower()
    return {".csv": Format.CSV, ".json": Format.JSON, ".xlsx": Format.XLSX}.get(suffix)

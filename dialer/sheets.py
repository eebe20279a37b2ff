"""The files banks send, read into rows of cells: CSV in UTF-8 (with or without a BOM) or
GBK/GB18030, and Excel .xlsx.

A Chinese bank's CSV is GBK more often than not (Excel on a Chinese Windows
saves "CSV" in the ANSI code page), and its Excel files carry merged cells
and formulas. Each of those fails in a way the operator can act on, naming
the encoding found, the cell, or the merged range, rather than importing
mojibake or blank fields.

Encodings: ``auto`` (the default) takes UTF-8 when every byte is UTF-8 and
GB18030 (a superset of GBK and GB2312) when it is not; a declared encoding is
held to: a GBK file declared as UTF-8, or the reverse, is refused naming what
was found. Excel: the first worksheet is read; a formula is read as the value
Excel saved with it (refused when none was saved); merged cells are refused,
because the value of a merged cell belongs to its first row only and the
rows under it would import with blank fields.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

from dialer.errors import DialerError
from dialer.said import Said, said

#: How an operator may declare a file's encoding, and the codec that reads it.
ENCODINGS = {
    "auto": "",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
}
#: Excel keeps 15 significant digits; a longer number typed into a number cell has lost the rest.
EXCEL_DIGITS = 15
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls
_HAN = re.compile(r"[\u3400-\u9fff]")
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Za-z0-9:$]+)"')


class Kind(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class SheetError(DialerError):
    """The file as a whole cannot be read; the message says why in the operator's terms."""

    hint = "save the file as .xlsx or CSV (UTF-8 or GBK) and import it again"

    def __init__(self, what: Said, hint: str = "") -> None:
        super().__init__(what.text, hint)
        self.said = what


@dataclass(frozen=True)
class CellProblem:
    """One cell that cannot be read as the bank meant it; named by its row and column."""

    line: int
    column: int
    said: Said

    @property
    def message(self) -> str:
        return self.said.text


@dataclass(frozen=True)
class Sheet:
    """Non-blank rows as (line or sheet row, cells), the header first."""

    rows: list[tuple[int, list[object]]]
    kind: Kind
    encoding: str
    problems: list[CellProblem] = field(default_factory=list)
    notes: list[Said] = field(default_factory=list)

    def column_name(self, index: int) -> str:
        """How the operator finds a column: its letter in Excel, its position in a CSV."""
        return str(self.column_said(index))

    def column_said(self, index: int) -> str | Said:
        """`column_name` as the reader's language says it (a letter needs no translating)."""
        return column_letter(index) if self.kind is Kind.XLSX else said("sheet.column", n=index + 1)


def column_letter(index: int) -> str:
    """A (0), B, ..., Z, AA (26): the spreadsheet's name for a 0-based column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, declared: str = "auto") -> tuple[str, str]:
    """(text, encoding found) of a CSV's bytes; raises `SheetError` naming what the bytes are.

    Pure. UTF-8 is tried first because a GBK file is almost never valid
    UTF-8, while UTF-8 Chinese often decodes as GB18030 into mojibake: the
    order is what makes the detection safe.
    """
    codec = ENCODINGS.get(declared.strip().lower())
    if codec is None:
        raise SheetError(
            said("sheet.unknown_encoding", declared=repr(declared[:20])),
            hint="leave the encoding out to detect it",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SheetError(said("sheet.utf16"))
    try:
        utf8 = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8 = None
        bad = exc.start
    if codec == "gb18030":
        if utf8 is not None and (data.startswith(b"\xef\xbb\xbf") or not data.isascii()):
            raise SheetError(said("sheet.declared_gbk_is_utf8"))
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError as exc:
            raise SheetError(
                said("sheet.not_gbk", offset=exc.start, line=_line_of(data, exc.start))
            ) from None
    if utf8 is not None:
        return utf8, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    gbk = _as_gb18030(data)
    if gbk is not None and codec == "":
        return gbk, "gb18030"
    where = {"offset": bad, "line": _line_of(data, bad)}
    if gbk is not None:
        raise SheetError(Said("sheet.declared_utf8_is_gbk", where))
    raise SheetError(Said("sheet.neither", where))


def _as_gb18030(data: bytes) -> str | None:
    """The text when the bytes read as Chinese in GB18030, else None."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    return text if _HAN.search(text) else None


def csv_rows(text: str, max_rows: int) -> list[tuple[int, list[object]]]:
    """Non-blank rows with the physical line each starts on, so errors point into the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[object]]] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(rows) > max_rows:
                raise SheetError(said("sheet.too_many_rows", max_rows=max_rows))
            rows.append((line, list(cells)))
    except csv.Error as exc:
        raise SheetError(
            said("sheet.not_csv", line=reader.line_num, problem=str(exc)[:200])
        ) from None
    return rows


def _cell_text(value: object) -> str | None:
    """A cell as the text the bank typed; None when Excel has already lost digits of it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return None if abs(value) >= 10**EXCEL_DIGITS else str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes") if value.time() else str(value.date())
    if isinstance(value, date | time):
        return value.isoformat()[:5] if isinstance(value, time) else value.isoformat()
    return str(value)


def _merged_ranges(archive: zipfile.ZipFile, path: str) -> list[str]:
    """The merged ranges of a worksheet, read from its XML in chunks (read-only mode lacks them)."""
    found: list[str] = []
    tail = b""
    with archive.open(path.lstrip("/")) as stream:
        while chunk := stream.read(1 << 20):
            block = tail + chunk
            found.extend(m.decode() for m in _MERGE.findall(block))
            cut = block.rfind(b"<")
            tail = block[cut:] if cut >= 0 and b">" not in block[cut:] else b""
    return found


def _row_cells(
    number: int, cells: tuple[object, ...], raw: tuple[object, ...], problems: list[CellProblem]
) -> tuple[list[object], bool]:
    """One worksheet row as text, and whether it held a formula; unreadable cells to `problems`."""
    texts: list[object] = []
    saw_formula = False
    for column, value in enumerate(cells):
        written = raw[column] if column < len(raw) else None
        is_formula = isinstance(written, str) and written.startswith("=")
        saw_formula = saw_formula or is_formula
        cell = f"{column_letter(column)}{number}"
        if is_formula and value is None:
            problems.append(
                CellProblem(
                    number,
                    column,
                    said("sheet.formula_unsaved", cell=cell, formula=str(written)[:40]),
                )
            )
        text = _cell_text(value)
        if text is None:
            problems.append(
                CellProblem(number, column, said("sheet.rounded", cell=cell, digits=EXCEL_DIGITS))
            )
            text = ""
        texts.append(text)
    return texts, saw_formula


def xlsx_rows(data: bytes, max_rows: int) -> Sheet:
    """The first worksheet's non-blank rows, formulas read as their saved values."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        values = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SheetError(said("sheet.not_xlsx", problem=str(exc)[:250])) from None
    try:
        if not values.worksheets:
            raise SheetError(said("sheet.no_worksheet"))
        sheet, formula_sheet = values.worksheets[0], formulas.worksheets[0]
        notes: list[Said] = []
        if len(values.worksheets) > 1:
            notes.append(
                said("sheet.many_sheets", sheets=len(values.worksheets), title=repr(sheet.title))
            )
        path = getattr(sheet, "_worksheet_path", None)
        if isinstance(path, str):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                merged = _merged_ranges(archive, path)
            if merged:
                shown = ", ".join(merged[:5]) + (" ..." if len(merged) > 5 else "")
                raise SheetError(said("sheet.merged", title=repr(sheet.title), ranges=shown))
        rows: list[tuple[int, list[object]]] = []
        problems: list[CellProblem] = []
        saw_formula = False
        pairs = zip(
            sheet.iter_rows(values_only=True),
            formula_sheet.iter_rows(values_only=True),
            strict=False,
        )
        for number, (cells, raw) in enumerate(pairs, start=1):
            texts, formula = _row_cells(number, cells, raw, problems)
            saw_formula = saw_formula or formula
            if not any(str(t).strip() for t in texts):
                continue
            if len(rows) > max_rows:
                raise SheetError(said("sheet.too_many_rows", max_rows=max_rows))
            rows.append((number, texts))
        if saw_formula:
            notes.append(said("sheet.formulas_read"))
        return Sheet(rows, Kind.XLSX, "xlsx", problems, notes)
    finally:
        values.close()
        formulas.close()


def read_sheet(data: bytes | str, kind: Kind, encoding: str = "auto", *, max_rows: int) -> Sheet:
    """Rows of a CSV or .xlsx file; what the bytes are wins over what they were called.

    An .xlsx uploaded as CSV (or named .csv) is still a workbook, so it is
    read as one; an old binary .xls is refused with what to do about it.
    """
    if isinstance(data, str):
        return Sheet(csv_rows(data, max_rows), Kind.CSV, "text")
    if data.startswith(_OLE):
        raise SheetError(said("sheet.xls"))
    if data.startswith(_ZIP) or kind is Kind.XLSX:
        return xlsx_rows(data, max_rows)
    text, found = decode_text(data, encoding)
    return Sheet(csv_rows(text, max_rows), Kind.CSV, found)

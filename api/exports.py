"""Lists as files a supervisor opens in Excel: .xlsx, or CSV in UTF-8 with a BOM.

Excel on a Chinese desktop reads a CSV without a BOM in the ANSI code page
(GBK), so UTF-8 Chinese turns to mojibake; the BOM is what makes it read
UTF-8. A cell that starts with ``=``, ``+``, ``-`` or ``@`` would be run as a
formula by the spreadsheet (CSV injection: an agent name or a transcript line
is text someone else typed), so in CSV such text is prefixed with ``'`` and in
.xlsx it is written as a text cell. Times are shown in the site's time zone,
named in the column header, because Excel has no time zones.

Every export is audited by the route that makes it (`recording-export`,
`qa-export`), with its filters, format and row count.

Column headers and the codes in cells (a recording's state, a flag's
category) are in the reader's language: a person opens these files, and the
console's buttons fetch them with the page's language. An English reader
gets the codes, as the files always had, so a script's columns stay put.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from fastapi.responses import Response

from api.console.labels import label
from recording.db.engine import as_utc

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: How a route declares its file answers in the API document.
FILE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "with `format=csv` or `format=xlsx`, the same rows as a file",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

Cell = str | int | float | bool | datetime | None


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


def headings(codes: Sequence[str], tz: ZoneInfo, zoned: Sequence[str] = ()) -> list[str]:
    """The header row in the reader's language; a time column names the zone its times are in."""
    return [
        f"{label('column', code)} ({tz.key})" if code in zoned else label("column", code)
        for code in codes
    ]


def _shown(value: Cell, tz: ZoneInfo) -> str | int | float | bool | None:
    if isinstance(value, datetime):
        return as_utc(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return value


def csv_bytes(headers: Sequence[str], rows: Sequence[Sequence[Cell]], tz: ZoneInfo) -> bytes:
    """UTF-8 with a BOM and CRLF lines, as Excel writes its own CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        cells = []
        for value in row:
            shown = _shown(value, tz)
            if isinstance(shown, str) and shown.startswith(_FORMULA_START):
                shown = "'" + shown
            cells.append("" if shown is None else shown)
        writer.writerow(cells)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], tz: ZoneInfo
) -> bytes:
    """One worksheet, the header row bold and frozen; text never becomes a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    heads = []
    for name in headers:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        heads.append(cell)
    sheet.append(heads)
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=_shown(value, tz))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # "=HYPERLINK(...)" typed by someone stays text
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def file_response(
    fmt: ExportFormat,
    name: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    tz: ZoneInfo,
) -> Response:
    """The rows as an attachment named `name`.csv or `name`.xlsx."""
    if fmt is ExportFormat.XLSX:
        body, media, suffix = xlsx_bytes(name, headers, rows, tz), XLSX_MEDIA_TYPE, "xlsx"
    else:
        body, media, suffix = csv_bytes(headers, rows, tz), CSV_MEDIA_TYPE, "csv"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{suffix}"',
            "Cache-Control": "no-store",
        },
    )

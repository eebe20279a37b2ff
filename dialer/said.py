"""What the importers say to a person, as a stable code and its values, so `api` can say it in
the reader's language.

`dialer` stays free of any language machinery (nothing here imports `api`):
a rejected row, a refused header or an unreadable file is a `Said`, whose
English sentence is the dialer's own (`text`, what logs, scripts and the
English console read) and whose code and parameters `api.import_messages`
renders from the gettext catalogue. The English of every code lives in
`ENGLISH`, the one table; `api` repeats each template for extraction, and
a test holds the two equal.

A parameter is a plain value (a count, a masked number, a cell name) or
another `Said` (a reason inside a sentence) or a tuple of them (a list of
columns), each rendered in the same language as the sentence around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

Param = Union[str, int, "Said", tuple["Said", ...]]

#: Every sentence the importers say, by code, in English with `%(name)s` parameters.
ENGLISH: Mapping[str, str] = {
    # reading the file (dialer.sheets)
    "sheet.unknown_encoding": "unknown encoding %(declared)s; use auto, utf-8 or gbk",
    "sheet.utf16": (
        "the file is UTF-16 text (Excel's 'Unicode text'), not UTF-8 or GBK; save it as "
        "'CSV UTF-8' or .xlsx"
    ),
    "sheet.declared_gbk_is_utf8": (
        "the file was declared GBK but is UTF-8 text; import it as utf-8 or auto"
    ),
    "sheet.not_gbk": (
        "the file is not GBK/GB18030 text (bad byte at offset %(offset)s, line %(line)s)"
    ),
    "sheet.declared_utf8_is_gbk": (
        "the file was declared UTF-8 but is GBK/GB18030 text (bad byte at offset %(offset)s, "
        "line %(line)s); import it with encoding gbk or auto"
    ),
    "sheet.neither": (
        "the file is not UTF-8 text, nor GBK (bad byte at offset %(offset)s, line %(line)s)"
    ),
    "sheet.too_many_rows": "more than %(max_rows)s rows; split the file",
    "sheet.not_csv": "line %(line)s is not CSV (%(problem)s)",
    "sheet.formula_unsaved": (
        "cell %(cell)s holds a formula (%(formula)s) with no saved value; open and save the "
        "file in Excel or WPS, or paste values"
    ),
    "sheet.rounded": (
        "cell %(cell)s is a number of more than %(digits)s digits, which Excel has already "
        "rounded; format the column as Text and type it again"
    ),
    "sheet.not_xlsx": "the file is not a readable .xlsx workbook (%(problem)s)",
    "sheet.no_worksheet": "the workbook has no worksheet",
    "sheet.many_sheets": "the workbook has %(sheets)s sheets; only the first, %(title)s, was read",
    "sheet.merged": (
        "the sheet %(title)s has merged cells (%(ranges)s): a merged cell's value belongs to "
        "its first row only, so the rows under it would import with blank fields; unmerge "
        "them and fill every row, then import again"
    ),
    "sheet.formulas_read": "formulas were read as the values Excel saved with them",
    "sheet.xls": (
        "the file is an old Excel .xls workbook; save it as .xlsx (Excel 2007 or later) or as CSV"
    ),
    "sheet.column": "column %(n)s",
    # the header (dialer.columns)
    "header.blank": "(no header)",
    "header.at": "'%(name)s (%(where)s)'",
    "header.unknown": (
        "unknown column(s) %(columns)s in the header; use the names in docs/imports.md "
        "(client, external_id, name, stage, numbers, ... or 客户, 账号, 姓名, 手机号, ...)"
    ),
    "header.twice": "the header names a column twice: %(columns)s",
    "header.missing": "the header lacks column(s) %(fields)s",
    "header.not_stored": "column(s) %(columns)s are not stored: the dialer does not need them",
    "field.client": "client",
    "field.external_id": "external_id",
    "field.name": "name",
    "field.stage": "stage",
    "field.numbers": "numbers",
    # one field of a debtor (dialer.debtors.validation)
    "value.not_text": "must be text, not %(kind)s",
    "value.required": "is required",
    "value.client": "must be 1-64 letters, digits, '.', '_' or '-'",
    "value.external_id": (
        "must be 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
    ),
    "value.too_long": "is longer than %(max)s characters",
    "value.control": "holds control characters",
    "value.stage": "must be 1-32 lower-case letters, digits, '_' or '-' (e.g. early, late, legal)",
    "value.timezone": "is not an IANA time zone name (e.g. Asia/Shanghai)",
    "value.role": "has an unknown role; use debtor, relative, employer or emergency",
    "value.number_entry": "each entry must be role:number, separated by ';'",
    "value.number_object": 'each entry must be an object {"role": ..., "number": ...}',
    "value.numbers_shape": "must be 'role:number;role:number' or a list of {role, number}",
    "value.no_number": "at least one number is required",
    "value.too_many_numbers": "more than %(max)s numbers",
    "value.number_empty": "number %(index)s is empty",
    "value.number_bad": "number %(index)s: %(problem)s",
    "value.number_twice": "number %(index)s (%(masked)s) is listed twice",
    "value.days": "has unknown days; use Mon-Fri, Sat,Sun or daily",
    "value.days_backwards": "has a day range that runs backwards; use Mon-Fri, not Fri-Mon",
    "value.clock": "has a time that is not HH:MM (00:00-23:59)",
    "value.window_backwards": (
        "window %(start)s-%(end)s ends before it starts; split a window that crosses midnight "
        "in two"
    ),
    "value.json": "is not valid JSON",
    "value.window_entry": "has an entry not like 'Mon-Fri 18:00-20:00'",
    "value.window_object": 'each window must be {"days": ..., "start": "HH:MM", "end": "HH:MM"}',
    "value.windows_shape": "must be 'Mon-Fri 18:00-20:00; ...' or a list of windows",
    "value.too_many_windows": "more than %(max)s windows",
    "value.timezone_required": "is required (the numbers do not pin one)",
    # a phone number (dialer.numbers)
    "number.unreadable": "%(masked)s is not a phone number (%(why)s)",
    "number.letters": (
        "%(masked)s has letters in it: a debtor's number is digits only, and a keypad would "
        "dial the letters as other digits"
    ),
    "number.invalid": "%(masked)s is not a valid number for its region (%(why)s)",
    "number.extension": (
        "%(masked)s has an extension; extensions are not dialed (the trunk would ring the "
        "main line and the extension would be lost)"
    ),
    "number.this_entry": "this entry",
    "why.too_short": "too short",
    "why.too_long": "too long",
    "why.country_code": "unknown country code",
    "why.wrong_length": "wrong length",
    "why.no_digits": "no digits to dial",
    "why.unreadable": "unreadable",
    "why.not_assigned": "not assigned",
    # a row of a file (dialer.debtors.bulk_import, dialer.dnc)
    "row.empty_file": "the file is empty; it needs a header line",
    "row.not_json": "the file is not JSON (%(problem)s)",
    "row.json_shape": 'the JSON must be a list of debtors or {"debtors": [...]}',
    "row.json_not_utf8": (
        "the file is not UTF-8 text (bad byte at offset %(offset)s); JSON is UTF-8"
    ),
    "row.not_object": "each debtor must be a JSON object",
    "row.extra_cells": "has more cells than the header has columns",
    "row.days": "must be a whole number of days",
    "row.repeats": "repeats the account on line %(line)s",
    "dnc.no_number_column": (
        "the header on line %(line)s has no number column (number, phone, 号码): %(columns)s"
    ),
    "dnc.not_imported": "column(s) %(columns)s were not imported",
    "dnc.no_number": "the row has no number",
}


@dataclass(frozen=True)
class Said:
    """One sentence for a person: a code of `ENGLISH` and the values it names."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The sentence in English, as the dialer says it."""
        return ENGLISH[self.code] % {name: english(value) for name, value in self.params.items()}

    def __str__(self) -> str:
        return self.text


def english(value: Param) -> str | int:
    """A parameter as the English sentence shows it."""
    if isinstance(value, Said):
        return value.text
    if isinstance(value, tuple):
        return ", ".join(str(english(v)) for v in value)
    return value


def said(code: str, **params: Param) -> Said:
    if code not in ENGLISH:
        raise KeyError(code)
    return Said(code, params)

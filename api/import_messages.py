"""What the importers say (`dialer.said`), in the reader's language: rejected rows named by
their line and column, refused headers, unreadable files.

The dialer answers with a code and its values; this module holds each
code's English once more, marked for the catalogue, so `make messages`
extracts it (a test holds this table equal to `dialer.said.ENGLISH`). An
English reader reads the dialer's own sentence.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.i18n import EN, N_, ZH, current, gettext, translate
from dialer.said import Param, Said

#: The catalogue's copy of `dialer.said.ENGLISH`, by code.
MESSAGES: Mapping[str, str] = {
    "sheet.unknown_encoding": N_("unknown encoding %(declared)s; use auto, utf-8 or gbk"),
    "sheet.utf16": N_(
        "the file is UTF-16 text (Excel's 'Unicode text'), not UTF-8 or GBK; save it as 'CSV "
        "UTF-8' or .xlsx"
    ),
    "sheet.declared_gbk_is_utf8": N_(
        "the file was declared GBK but is UTF-8 text; import it as utf-8 or auto"
    ),
    "sheet.not_gbk": N_(
        "the file is not GBK/GB18030 text (bad byte at offset %(offset)s, line %(line)s)"
    ),
    "sheet.declared_utf8_is_gbk": N_(
        "the file was declared UTF-8 but is GBK/GB18030 text (bad byte at offset %(offset)s, "
        "line %(line)s); import it with encoding gbk or auto"
    ),
    "sheet.neither": N_(
        "the file is not UTF-8 text, nor GBK (bad byte at offset %(offset)s, line %(line)s)"
    ),
    "sheet.too_many_rows": N_("more than %(max_rows)s rows; split the file"),
    "sheet.not_csv": N_("line %(line)s is not CSV (%(problem)s)"),
    "sheet.formula_unsaved": N_(
        "cell %(cell)s holds a formula (%(formula)s) with no saved value; open and save the "
        "file in Excel or WPS, or paste values"
    ),
    "sheet.rounded": N_(
        "cell %(cell)s is a number of more than %(digits)s digits, which Excel has already "
        "rounded; format the column as Text and type it again"
    ),
    "sheet.not_xlsx": N_("the file is not a readable .xlsx workbook (%(problem)s)"),
    "sheet.no_worksheet": N_("the workbook has no worksheet"),
    "sheet.many_sheets": N_(
        "the workbook has %(sheets)s sheets; only the first, %(title)s, was read"
    ),
    "sheet.merged": N_(
        "the sheet %(title)s has merged cells (%(ranges)s): a merged cell's value belongs to "
        "its first row only, so the rows under it would import with blank fields; unmerge "
        "them and fill every row, then import again"
    ),
    "sheet.formulas_read": N_("formulas were read as the values Excel saved with them"),
    "sheet.xls": N_(
        "the file is an old Excel .xls workbook; save it as .xlsx (Excel 2007 or later) or as CSV"
    ),
    "sheet.column": N_("column %(n)s"),
    "header.blank": N_("(no header)"),
    "header.at": N_("'%(name)s (%(where)s)'"),
    "header.unknown": N_(
        "unknown column(s) %(columns)s in the header; use the names in docs/imports.md "
        "(client, external_id, name, stage, numbers, ... or 客户, 账号, 姓名, 手机号, ...)"
    ),
    "header.twice": N_("the header names a column twice: %(columns)s"),
    "header.missing": N_("the header lacks column(s) %(fields)s"),
    "header.not_stored": N_("column(s) %(columns)s are not stored: the dialer does not need them"),
    "field.client": N_("client"),
    "field.external_id": N_("external_id"),
    "field.name": N_("name"),
    "field.stage": N_("stage"),
    "field.numbers": N_("numbers"),
    "value.not_text": N_("must be text, not %(kind)s"),
    "value.required": N_("is required"),
    "value.client": N_("must be 1-64 letters, digits, '.', '_' or '-'"),
    "value.external_id": N_(
        "must be 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
    ),
    "value.too_long": N_("is longer than %(max)s characters"),
    "value.control": N_("holds control characters"),
    "value.stage": N_(
        "must be 1-32 lower-case letters, digits, '_' or '-' (e.g. early, late, legal)"
    ),
    "value.timezone": N_("is not an IANA time zone name (e.g. Asia/Shanghai)"),
    "value.role": N_("has an unknown role; use debtor, relative, employer or emergency"),
    "value.number_entry": N_("each entry must be role:number, separated by ';'"),
    "value.number_object": N_('each entry must be an object {"role": ..., "number": ...}'),
    "value.numbers_shape": N_("must be 'role:number;role:number' or a list of {role, number}"),
    "value.no_number": N_("at least one number is required"),
    "value.too_many_numbers": N_("more than %(max)s numbers"),
    "value.number_empty": N_("number %(index)s is empty"),
    "value.number_bad": N_("number %(index)s: %(problem)s"),
    "value.number_twice": N_("number %(index)s (%(masked)s) is listed twice"),
    "value.days": N_("has unknown days; use Mon-Fri, Sat,Sun or daily"),
    "value.days_backwards": N_("has a day range that runs backwards; use Mon-Fri, not Fri-Mon"),
    "value.clock": N_("has a time that is not HH:MM (00:00-23:59)"),
    "value.window_backwards": N_(
        "window %(start)s-%(end)s ends before it starts; split a window that crosses "
        "midnight in two"
    ),
    "value.json": N_("is not valid JSON"),
    "value.window_entry": N_("has an entry not like 'Mon-Fri 18:00-20:00'"),
    "value.window_object": N_(
        'each window must be {"days": ..., "start": "HH:MM", "end": "HH:MM"}'
    ),
    "value.windows_shape": N_("must be 'Mon-Fri 18:00-20:00; ...' or a list of windows"),
    "value.too_many_windows": N_("more than %(max)s windows"),
    "value.timezone_required": N_("is required (the numbers do not pin one)"),
    "number.unreadable": N_("%(masked)s is not a phone number (%(why)s)"),
    "number.letters": N_(
        "%(masked)s has letters in it: a debtor's number is digits only, and a keypad would "
        "dial the letters as other digits"
    ),
    "number.invalid": N_("%(masked)s is not a valid number for its region (%(why)s)"),
    "number.extension": N_(
        "%(masked)s has an extension; extensions are not dialed (the trunk would ring the "
        "main line and the extension would be lost)"
    ),
    "number.this_entry": N_("this entry"),
    "why.too_short": N_("too short"),
    "why.too_long": N_("too long"),
    "why.country_code": N_("unknown country code"),
    "why.wrong_length": N_("wrong length"),
    "why.no_digits": N_("no digits to dial"),
    "why.unreadable": N_("unreadable"),
    "why.not_assigned": N_("not assigned"),
    "row.empty_file": N_("the file is empty; it needs a header line"),
    "row.not_json": N_("the file is not JSON (%(problem)s)"),
    "row.json_shape": N_('the JSON must be a list of debtors or {"debtors": [...]}'),
    "row.json_not_utf8": N_(
        "the file is not UTF-8 text (bad byte at offset %(offset)s); JSON is UTF-8"
    ),
    "row.not_object": N_("each debtor must be a JSON object"),
    "row.extra_cells": N_("has more cells than the header has columns"),
    "row.days": N_("must be a whole number of days"),
    "row.repeats": N_("repeats the account on line %(line)s"),
    "dnc.no_number_column": N_(
        "the header on line %(line)s has no number column (number, phone, 号码): %(columns)s"
    ),
    "dnc.not_imported": N_("column(s) %(columns)s were not imported"),
    "dnc.no_number": N_("the row has no number"),
}

#: The dialer's errors and hints to the fixes, said by `api.cli.doctor.hinted` (and the import
#: route) in the reader's language.
HINTS = (
    N_(
        "another import or update wrote some of the same accounts at the same time; nothing "
        "was imported"
    ),
    N_("import the file again"),
    N_("save the file as .xlsx or CSV (UTF-8 or GBK) and import it again"),
    N_("leave the encoding out to detect it"),
    N_("enter digits with an optional +country code"),
    N_("check the digits and the country code"),
    N_("dial the main number and ask for the extension; keep the extension in the notes"),
    N_(
        "correct the number in the debtor records; vanity numbers (1-800-FLOWERS) are dialed "
        "only where DIALGUARD_ALLOW_VANITY_NUMBERS is on"
    ),
)

_LINE_COLUMN = N_("line %(line)s, %(column)s: %(problem)s")
_LINE = N_("line %(line)s: %(problem)s")
_FIELD = N_("field %(field)s: %(problem)s")


def _value(value: Param) -> str | int:
    if isinstance(value, Said):
        return say(value)
    if isinstance(value, tuple):
        return ("、" if current() == ZH else ", ").join(str(_value(v)) for v in value)
    return value


def say(what: Said) -> str:
    """The sentence in the current language; one the catalogue lacks stays English."""
    template = MESSAGES.get(what.code)
    if template is None:
        return what.text
    return gettext(template) % {name: _value(value) for name, value in what.params.items()}


def problem(message: str, what: Said | None) -> str:
    """A row's problem: an English reader gets the dialer's sentence (it names the field), any
    other the code's sentence from the catalogue (the column is named beside it)."""
    return message if what is None or current() == EN else say(what)


def row_error(line: int, column: str, message: str, what: Said | None) -> str:
    """One refused row as a person reads it: the line, the column as the file names it, and
    what is wrong, in the reader's language (line 0 is the file as a whole)."""
    text = problem(message, what)
    if line == 0:
        return text
    if column in ("", "row"):
        return translate(_LINE, line=line, problem=text)
    return translate(_LINE_COLUMN, line=line, column=column, problem=text)


def field_error(field: str, message: str, what: Said) -> str:
    """One bad field of one account (the API's PUT): its name and what is wrong with it."""
    if current() == EN:
        return message
    return translate(_FIELD, field=field, problem=say(what))

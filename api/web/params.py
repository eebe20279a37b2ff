"""Parameter types shared by the routes and the console: row ids, and real text.

Free text that a person types (a reason, a comment, a search phrase) goes to
the database, the audit log and other people's screens. `Text` is the one
type for it: printable, not blank, at least a few characters, and without
control characters (a NUL is refused by PostgreSQL, an escape or a bidi
override garbles whoever reads the log later). Query strings are checked for
control characters before any handler runs (`api.web.limits.InputGuard`),
so a NUL in any parameter is a 422, never a 500.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from api.i18n import gettext, translate

#: Row ids are `Integer` columns, 32-bit signed on PostgreSQL: a larger id in a URL is
#: refused as invalid input (422) instead of overflowing the database driver (a 500).
MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]

#: Unicode categories never accepted in text: controls, surrogates, private use, unassigned,
#: line and paragraph separators.
_REFUSED_CATEGORIES = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
#: Bidirectional overrides and isolates: they make an audit line read differently from what it is.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_MULTILINE = {"\n", "\t"}

#: What the OpenAPI document says of free text: no C0/C1 control character, one non-space.
#: (ECMA, Python and Rust regular expressions all read these escapes alike.)
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
LINES_PATTERN = (
    r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
)


def text_problem(value: str, min_length: int = 3, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable free text, or None when it is (judged after trimming)."""
    allowed = _MULTILINE if multiline else set()
    for char in value:
        if char in allowed:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _BIDI:
            return gettext("must not hold control or invisible formatting characters")
    trimmed = value.replace("\r\n", "\n").strip()
    if not trimmed:
        return gettext("must not be blank")
    if len(trimmed) < min_length:
        return translate("must be at least %(n)s characters of text", n=min_length)
    return None


def has_control(value: str) -> bool:
    """Whether a parameter value holds a control character (any of Unicode's Cc, or a bidi one)."""
    return any(unicodedata.category(char) == "Cc" or char in _BIDI for char in value)


def _text(min_length: int, multiline: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        why = text_problem(value, min_length, multiline)
        if why is not None:
            raise ValueError(why)
        return value.replace("\r\n", "\n").strip()

    return AfterValidator(check)


def no_control(value: str | None) -> str | None:
    """A validator: any text, empty too, but no control character."""
    if value is not None and has_control(value.replace("\n", "").replace("\t", "")):
        raise ValueError("must not hold control characters")
    return value


def _line_check(value: str) -> str:
    if has_control(value):
        raise ValueError("must not hold control characters")
    return value


#: A reason a person gives (for playing, downloading, a hold, a longer retention, a request):
#: one line of real text, 3 to 500 characters after trimming.
Reason = Annotated[
    str,
    Field(min_length=3, max_length=500, pattern=LINE_PATTERN, description="why, in words"),
    _text(3),
]

#: A reviewer's or agent's comment: like a reason, but it may run over several lines.
Comment = Annotated[
    str,
    Field(min_length=3, max_length=1000, pattern=LINES_PATTERN, description="in words"),
    _text(3, multiline=True),
]

#: A search phrase: any language, possibly empty, never a control character.
SearchText = Annotated[str, Field(max_length=200), AfterValidator(_line_check)]

#: A line of data (a name, a stage): possibly empty, never a control character.
Line = Annotated[str, AfterValidator(_line_check)]


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: object) -> object:
    """A moment is written as a date and time, never as a bare number of seconds."""
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError(
            "must be an ISO 8601 date-time with a UTC offset, e.g. 2026-11-24T09:00+08:00"
        )
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("must be a moment between the years 1 and 9999 in UTC") from None


#: A moment in a query (`from`, `to`, `since`): ISO 8601 with its UTC offset, handed on in UTC.
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]

"""Debtor rows as the collection system sends them (CSV line, JSON object, API body), checked
field by field into a `DebtorIn`: numbers in E.164, windows parsed, every bad field named.

Nothing here logs or echoes a name or a full number; errors name the field
and show at most a masked number.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from dialer.debtors.models import Role
from dialer.numbers import MalformedNumber, mask, normalize, zone_for_number
from dialer.said import Said, said

MAX_NUMBERS = 20
MAX_WINDOWS = 14
NAME_MAX = 200
CLIENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
STAGE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_CLIENT = re.compile(CLIENT_PATTERN)
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
_STAGE = re.compile(STAGE_PATTERN)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Bidirectional overrides make a name display as something else (Trojan Source).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_ROLE_ALIASES = {
    "emergency_contact": Role.EMERGENCY,
    "emergency-contact": Role.EMERGENCY,
    "emergency contact": Role.EMERGENCY,
}


@dataclass(frozen=True)
class Window:
    """Hours the debtor agreed to be called back in, in the debtor's own time zone."""

    days: tuple[str, ...]
    start: time
    end: time

    def as_json(self) -> dict[str, Any]:
        return {
            "days": list(self.days),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }


@dataclass(frozen=True)
class Number:
    role: Role
    e164: str


@dataclass(frozen=True)
class DebtorIn:
    """One valid account, numbers in E.164: what the upsert writes."""

    client_id: str
    external_id: str
    name: str
    stage: str
    timezone: str
    numbers: tuple[Number, ...]
    windows: tuple[Window, ...]

    def __repr__(self) -> str:  # never put the name or a number in a log or traceback
        return f"DebtorIn({self.client_id}/{self.external_id}, {len(self.numbers)} numbers)"


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field; messages show at most a masked number.

    `message` is the English sentence, the field's name first; `said` is the
    problem alone, for a reader who is told the column another way.
    """

    field: str
    message: str
    said: Said


class _Bad(ValueError):
    def __init__(self, what: Said) -> None:
        super().__init__(what.text)
        self.said = what
        self.message = what.text


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Bad(said("value.not_text", kind=type(value).__name__))


def _client(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad(said("value.required"))
    if not _CLIENT.match(text):
        raise _Bad(said("value.client"))
    return text


def _external_id(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad(said("value.required"))
    if not _EXTERNAL_ID.match(text):
        raise _Bad(said("value.external_id"))
    return text


def _name(value: object) -> str:
    text = unicodedata.normalize("NFC", _text(value))
    if not text:
        raise _Bad(said("value.required"))
    if len(text) > NAME_MAX:
        raise _Bad(said("value.too_long", max=NAME_MAX))
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in text):
        raise _Bad(said("value.control"))
    return text


def _stage(value: object) -> str:
    text = _text(value).lower()
    if not text:
        raise _Bad(said("value.required"))
    if not _STAGE.match(text):
        raise _Bad(said("value.stage"))
    return text


def _timezone(value: object) -> str:
    text = _text(value)
    if text and text not in _zones():
        raise _Bad(said("value.timezone"))
    return text


def _role(value: object) -> Role:
    text = _text(value).lower()
    role = _ROLE_ALIASES.get(text)
    if role is not None:
        return role
    try:
        return Role(text)
    except ValueError:
        raise _Bad(said("value.role")) from None


def _number_items(value: object) -> list[tuple[object, object]]:
    """(role, number) pairs from `role:number;role:number` or a list of objects."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        pairs: list[tuple[object, object]] = []
        for part in value.split(";"):
            if not part.strip():
                continue
            role, sep, number = part.partition(":")
            if not sep:
                raise _Bad(said("value.number_entry"))
            pairs.append((role, number))
        return pairs
    if isinstance(value, list):
        items: list[tuple[object, object]] = []
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad(said("value.number_object"))
            items.append((item.get("role"), item.get("number")))
        return items
    raise _Bad(said("value.numbers_shape"))


def _numbers(value: object, region: str, allow_vanity: bool = False) -> tuple[Number, ...]:
    items = _number_items(value)
    if not items:
        raise _Bad(said("value.no_number"))
    if len(items) > MAX_NUMBERS:
        raise _Bad(said("value.too_many_numbers", max=MAX_NUMBERS))
    numbers: list[Number] = []
    seen: set[str] = set()
    for index, (role_raw, raw) in enumerate(items, start=1):
        role = _role(role_raw)
        text = _text(raw)
        if not text:
            raise _Bad(said("value.number_empty", index=index))
        try:
            e164 = normalize(text, region, allow_vanity=allow_vanity)
        except MalformedNumber as exc:
            raise _Bad(said("value.number_bad", index=index, problem=exc.said)) from None
        if e164 in seen:
            raise _Bad(said("value.number_twice", index=index, masked=mask(e164)))
        seen.add(e164)
        numbers.append(Number(role, e164))
    return tuple(numbers)


def _days(text: str) -> tuple[str, ...]:
    spec = text.strip().lower()
    if spec in ("daily", "every day", "all", "*"):
        return DAYS
    chosen: set[str] = set()
    for part in spec.split(","):
        first, sep, last = part.strip().partition("-")
        first = first.strip()[:3]
        last = last.strip()[:3]
        if first not in DAYS or (sep and last not in DAYS):
            raise _Bad(said("value.days"))
        lo = DAYS.index(first)
        hi = DAYS.index(last) if sep else lo
        if hi < lo:
            raise _Bad(said("value.days_backwards"))
        chosen.update(DAYS[lo : hi + 1])
    return tuple(d for d in DAYS if d in chosen)


def _clock(text: object) -> time:
    found = _TIME.match(_text(text))
    if not found:
        raise _Bad(said("value.clock"))
    return time(int(found.group(1)), int(found.group(2)))


def _window(days: object, start: object, end: object) -> Window:
    if isinstance(days, list):
        day_tuple = _days(",".join(_text(d) for d in days))
    else:
        day_tuple = _days(_text(days))
    window = Window(day_tuple, _clock(start), _clock(end))
    if window.end <= window.start:
        raise _Bad(
            said("value.window_backwards", start=f"{window.start:%H:%M}", end=f"{window.end:%H:%M}")
        )
    return window


_WINDOW_TEXT = re.compile(
    r"^(?P<days>.+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)


def _windows(value: object) -> tuple[Window, ...]:
    """`Mon-Fri 18:00-20:00; Sat 10:00-12:00`, or JSON [{"days", "start", "end"}]."""
    if value is None or value == "":
        return ()
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Bad(said("value.json")) from None
    windows: list[Window] = []
    if isinstance(value, str):
        for part in value.split(";"):
            if not part.strip():
                continue
            found = _WINDOW_TEXT.match(part.strip())
            if not found:
                raise _Bad(said("value.window_entry"))
            windows.append(_window(found["days"], found["start"], found["end"]))
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad(said("value.window_object"))
            windows.append(_window(item.get("days"), item.get("start"), item.get("end")))
    else:
        raise _Bad(said("value.windows_shape"))
    if len(windows) > MAX_WINDOWS:
        raise _Bad(said("value.too_many_windows", max=MAX_WINDOWS))
    return tuple(windows)


def validate_row(
    raw: Mapping[str, object], region: str, *, allow_vanity: bool = False
) -> DebtorIn | list[FieldError]:
    """One account checked whole: every bad field is named, so one pass fixes a file.

    `raw` holds client, external_id, name, stage, timezone, numbers and
    callback_windows as they came from a CSV line, a JSON object or the API.
    A missing time zone is taken from the first debtor-role number when its
    numbering plan has exactly one. Letters in a number are a data error
    unless `allow_vanity` (the site's DIALGUARD_ALLOW_VANITY_NUMBERS); an
    extension is always refused (dialer/numbers.py).
    """
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for field, check in (
        ("client", _client),
        ("external_id", _external_id),
        ("name", _name),
        ("stage", _stage),
        ("timezone", _timezone),
        ("callback_windows", _windows),
    ):
        try:
            values[field] = check(raw.get(field))
        except _Bad as exc:
            errors.append(FieldError(field, f"{field} {exc.message}", exc.said))
    try:
        values["numbers"] = _numbers(raw.get("numbers"), region, allow_vanity)
    except _Bad as exc:
        errors.append(FieldError("numbers", f"numbers: {exc.message}", exc.said))
    if not errors and not values["timezone"]:
        own = [n for n in values["numbers"] if n.role is Role.DEBTOR]
        zone = zone_for_number(own[0].e164) if own else None
        if zone is None:
            required = said("value.timezone_required")
            errors.append(FieldError("timezone", f"timezone {required.text}", required))
        else:
            values["timezone"] = zone.key
    if errors:
        return errors
    return DebtorIn(
        client_id=values["client"],
        external_id=values["external_id"],
        name=values["name"],
        stage=values["stage"],
        timezone=values["timezone"],
        numbers=values["numbers"],
        windows=values["callback_windows"],
    )

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
    """What is wrong with one field; messages show at most a masked number."""

    field: str
    message: str


class _Bad(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    raise _Bad(f"must be text, not {type(value).__name__}")


def _client(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad("is required")
    if not _CLIENT.match(text):
        raise _Bad("must be 1-64 letters, digits, '.', '_' or '-'")
    return text


def _external_id(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad("is required")
    if not _EXTERNAL_ID.match(text):
        raise _Bad(
            "must be 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    return text


def _name(value: object) -> str:
    text = unicodedata.normalize("NFC", _text(value))
    if not text:
        raise _Bad("is required")
    if len(text) > NAME_MAX:
        raise _Bad(f"is longer than {NAME_MAX} characters")
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in text):
        raise _Bad("holds control characters")
    return text


def _stage(value: object) -> str:
    text = _text(value).lower()
    if not text:
        raise _Bad("is required")
    if not _STAGE.match(text):
        raise _Bad("must be 1-32 lower-case letters, digits, '_' or '-' (e.g. early, late, legal)")
    return text


def _timezone(value: object) -> str:
    text = _text(value)
    if text and text not in _zones():
        raise _Bad("is not an IANA time zone name (e.g. Asia/Shanghai)")
    return text


def _role(value: object) -> Role:
    text = _text(value).lower()
    role = _ROLE_ALIASES.get(text)
    if role is not None:
        return role
    try:
        return Role(text)
    except ValueError:
        raise _Bad("has an unknown role; use debtor, relative, employer or emergency") from None


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
                raise _Bad("each entry must be role:number, separated by ';'")
            pairs.append((role, number))
        return pairs
    if isinstance(value, list):
        items: list[tuple[object, object]] = []
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad('each entry must be an object {"role": ..., "number": ...}')
            items.append((item.get("role"), item.get("number")))
        return items
    raise _Bad("must be 'role:number;role:number' or a list of {role, number}")


def _numbers(value: object, region: str, allow_vanity: bool = False) -> tuple[Number, ...]:
    items = _number_items(value)
    if not items:
        raise _Bad("at least one number is required")
    if len(items) > MAX_NUMBERS:
        raise _Bad(f"more than {MAX_NUMBERS} numbers")
    numbers: list[Number] = []
    seen: set[str] = set()
    for index, (role_raw, raw) in enumerate(items, start=1):
        role = _role(role_raw)
        text = _text(raw)
        if not text:
            raise _Bad(f"number {index} is empty")
        try:
            e164 = normalize(text, region, allow_vanity=allow_vanity)
        except MalformedNumber as exc:
            raise _Bad(f"number {index}: {exc}") from None
        if e164 in seen:
            raise _Bad(f"number {index} ({mask(e164)}) is listed twice")
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
            raise _Bad("has unknown days; use Mon-Fri, Sat,Sun or daily")
        lo = DAYS.index(first)
        hi = DAYS.index(last) if sep else lo
        if hi < lo:
            raise _Bad("has a day range that runs backwards; use Mon-Fri, not Fri-Mon")
        chosen.update(DAYS[lo : hi + 1])
    return tuple(d for d in DAYS if d in chosen)


def _clock(text: object) -> time:
    found = _TIME.match(_text(text))
    if not found:
        raise _Bad("has a time that is not HH:MM (00:00-23:59)")
    return time(int(found.group(1)), int(found.group(2)))


def _window(days: object, start: object, end: object) -> Window:
    if isinstance(days, list):
        day_tuple = _days(",".join(_text(d) for d in days))
    else:
        day_tuple = _days(_text(days))
    window = Window(day_tuple, _clock(start), _clock(end))
    if window.end <= window.start:
        raise _Bad(
            f"window {window.start:%H:%M}-{window.end:%H:%M} ends before it starts; "
            "split a window that crosses midnight in two"
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
            raise _Bad("is not valid JSON") from None
    windows: list[Window] = []
    if isinstance(value, str):
        for part in value.split(";"):
            if not part.strip():
                continue
            found = _WINDOW_TEXT.match(part.strip())
            if not found:
                raise _Bad("has an entry not like 'Mon-Fri 18:00-20:00'")
            windows.append(_window(found["days"], found["start"], found["end"]))
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad('each window must be {"days": ..., "start": "HH:MM", "end": "HH:MM"}')
            windows.append(_window(item.get("days"), item.get("start"), item.get("end")))
    else:
        raise _Bad("must be 'Mon-Fri 18:00-20:00; ...' or a list of windows")
    if len(windows) > MAX_WINDOWS:
        raise _Bad(f"more than {MAX_WINDOWS} windows")
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
            errors.append(FieldError(field, f"{field} {exc.message}"))
    try:
        values["numbers"] = _numbers(raw.get("numbers"), region, allow_vanity)
    except _Bad as exc:
        errors.append(FieldError("numbers", f"numbers: {exc.message}"))
    if not errors and not values["timezone"]:
        own = [n for n in values["numbers"] if n.role is Role.DEBTOR]
        zone = zone_for_number(own[0].e164) if own else None
        if zone is None:
            errors.append(
                FieldError("timezone", "timezone is required (the numbers do not pin one)")
            )
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

"""Working days of mainland China: public holidays and make-up working days.

China moves working days around every year (调休): the State Council publishes,
usually in November, which days are off for each festival and which Saturdays
or Sundays are worked instead. No rule computes that, so the calendar is data
(`dialer/data/cn_workdays.json`), replaced or extended without a code change.

Deciding stays pure: `parse_calendar` turns a mapping into a `WorkdayCalendar`,
and only `load_calendar` touches a file. A date in a year the data does not
cover falls back to Monday-Friday and says so (`DayInfo.status == "fallback"`)
instead of failing, since a dialer that crashes on January 1st of a new year is
worse than one that calls on a holiday it could not know about.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any, Literal

#: What the calendar knows about a year: published by the State Council,
#: predicted ahead of the notice, or not covered at all (plain Monday-Friday).
YearStatus = Literal["official", "provisional", "fallback"]

SCHEMA_VERSION = 1
PACKAGED_FILE = "cn_workdays.json"

# A working day is normally found within a fortnight (the longest Chinese break
# is 9 days); a year without one means the data is broken, not that no call may
# ever be placed, so the search stops there and says so.
_MAX_SEARCH_DAYS = 366


@dataclass(frozen=True, slots=True)
class DayInfo:
    """One day as the calendar sees it, with how sure it is."""

    day: date
    working: bool
    holiday: str | None
    makeup_workday: bool
    status: YearStatus


@dataclass(frozen=True, slots=True)
class YearCalendar:
    """One year of the schedule; `source` and `note` travel to audits with it."""

    year: int
    holidays: Mapping[date, str]
    workdays: frozenset[date]
    provisional: bool
    source: str
    note: str


@dataclass(frozen=True, slots=True)
class WorkdayCalendar:
    """Working days by the published schedule, Monday-Friday outside it."""

    name: str
    years: Mapping[int, YearCalendar]

    def status(self, year: int) -> YearStatus:
        known = self.years.get(year)
        if known is None:
            return "fallback"
        return "provisional" if known.provisional else "official"

    def is_provisional(self, year: int) -> bool:
        """True for a year predicted before its notice came out: audits need to know."""
        return self.status(year) == "provisional"

    def covers(self, year: int) -> bool:
        return year in self.years

    def holiday_name(self, day: date) -> str | None:
        known = self.years.get(day.year)
        return None if known is None else known.holidays.get(day)

    def is_working_day(self, day: date) -> bool:
        known = self.years.get(day.year)
        if known is None:
            return day.weekday() < 5
        if day in known.holidays:
            return False
        return day in known.workdays or day.weekday() < 5

    def info(self, day: date) -> DayInfo:
        known = self.years.get(day.year)
        return DayInfo(
            day=day,
            working=self.is_working_day(day),
            holiday=None if known is None else known.holidays.get(day),
            makeup_workday=known is not None and day in known.workdays,
            status=self.status(day.year),
        )

    def next_working_day(self, day: date) -> date:
        """The first working day on or after `day`."""
        for offset in range(_MAX_SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(
            f"calendar {self.name!r} has no working day in the {_MAX_SEARCH_DAYS} days "
            f"from {day.isoformat()}: check its data"
        )


def _date(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a date as YYYY-MM-DD") from None


def _year(key: object, raw: Any) -> YearCalendar:
    if not str(key).isdigit():
        raise ValueError(f"years: {key!r} is not a year")
    year = int(str(key))
    if not isinstance(raw, Mapping):
        raise ValueError(f"{year}: expected an object with holidays and workdays")
    holidays: dict[date, str] = {}
    for i, entry in enumerate(raw.get("holidays", [])):
        where = f"{year}: holidays[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where}: expected {{name, from, to}}")
        first = _date(entry.get("from"), f"{where}.from")
        last = _date(entry.get("to", entry.get("from")), f"{where}.to")
        if last < first:
            raise ValueError(f"{where}: ends {last} before it starts {first}")
        for offset in range((last - first).days + 1):
            holidays[first + timedelta(days=offset)] = entry["name"]
    workdays = frozenset(
        _date(value, f"{year}: workdays[{i}]") for i, value in enumerate(raw.get("workdays", []))
    )
    for day in (*holidays, *workdays):
        if day.year != year:
            raise ValueError(f"{year}: {day} belongs to another year")
    for day in sorted(workdays):
        if day in holidays:
            raise ValueError(f"{year}: {day} is listed both as a holiday and as a workday")
        if day.weekday() < 5:
            raise ValueError(f"{year}: make-up workday {day} is not a Saturday or Sunday")
    provisional = raw.get("provisional", False)
    if not isinstance(provisional, bool):
        raise ValueError(f"{year}: provisional must be true or false")
    return YearCalendar(
        year=year,
        holidays=holidays,
        workdays=workdays,
        provisional=provisional,
        source=str(raw.get("source", "")),
        note=str(raw.get("note", "")),
    )


def parse_calendar(data: Mapping[str, Any]) -> WorkdayCalendar:
    """Build a calendar from the JSON schema of `cn_workdays.json`; ValueError names the flaw."""
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise ValueError(f"calendar schema {schema!r} is not supported (expected {SCHEMA_VERSION})")
    years = data.get("years")
    if not isinstance(years, Mapping):
        raise ValueError("calendar: expected 'years', an object keyed by year")
    parsed = {known.year: known for known in (_year(key, raw) for key, raw in years.items())}
    return WorkdayCalendar(name=str(data.get("calendar", "custom")), years=parsed)


@functools.cache
def _packaged() -> WorkdayCalendar:
    text = resources.files("dialer").joinpath("data", PACKAGED_FILE).read_text(encoding="utf-8")
    return parse_calendar(json.loads(text))


def load_calendar(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> WorkdayCalendar:
    """The packaged Chinese calendar, or one from a JSON file or an already-read mapping.

    The packaged file is read once per process; a site with its own schedule
    (a regional holiday, next year's notice before a release) passes its file.
    """
    if source is None:
        return _packaged()
    if isinstance(source, Mapping):
        return parse_calendar(source)
    with open(source, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, Mapping):
        raise ValueError(f"{os.fspath(source)}: expected a JSON object")
    return parse_calendar(data)

"""The Chinese working-day calendar against the State Council's published schedules.

Each row is a day a collections team plans around: the first and last day of
a break, the Saturday or Sunday worked to make up for it, an ordinary weekend,
and days in years the data does not cover.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialer.workdays import WorkdayCalendar, YearStatus, load_calendar, parse_calendar

CAL = load_calendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


# (day, working, holiday name, make-up working day, status)
DAYS: list[tuple[str, bool, str | None, bool, YearStatus]] = [
    # 2025, 国务院办公厅关于2025年部分节假日安排的通知
    ("2025-01-01", False, "New Year's Day", False, "official"),
    ("2025-01-02", True, None, False, "official"),
    ("2025-01-26", True, None, True, "official"),  # Sunday worked before Spring Festival
    ("2025-01-28", False, "Spring Festival", False, "official"),  # the Eve, a Tuesday
    ("2025-02-01", False, "Spring Festival", False, "official"),  # a Saturday inside the break
    ("2025-02-04", False, "Spring Festival", False, "official"),  # last day, a Tuesday
    ("2025-02-05", True, None, False, "official"),
    ("2025-02-08", True, None, True, "official"),  # Saturday worked after it
    ("2025-02-09", False, None, False, "official"),  # the Sunday after is off
    ("2025-04-04", False, "Qingming Festival", False, "official"),
    ("2025-04-27", True, None, True, "official"),
    ("2025-05-05", False, "Labour Day", False, "official"),
    ("2025-06-02", False, "Dragon Boat Festival", False, "official"),
    ("2025-09-28", True, None, True, "official"),
    ("2025-10-08", False, "National Day and Mid-Autumn Festival", False, "official"),
    ("2025-10-09", True, None, False, "official"),
    ("2025-10-11", True, None, True, "official"),
    # 2026, 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)
    ("2026-01-02", False, "New Year's Day", False, "official"),
    ("2026-01-04", True, None, True, "official"),
    ("2026-02-13", True, None, False, "official"),
    ("2026-02-14", True, None, True, "official"),
    ("2026-02-15", False, "Spring Festival", False, "official"),
    ("2026-02-23", False, "Spring Festival", False, "official"),  # a Monday, 9th day off
    ("2026-02-24", True, None, False, "official"),
    ("2026-02-28", True, None, True, "official"),
    ("2026-03-07", False, None, False, "official"),  # an ordinary Saturday
    ("2026-04-06", False, "Qingming Festival", False, "official"),
    ("2026-05-05", False, "Labour Day", False, "official"),
    ("2026-05-09", True, None, True, "official"),
    ("2026-06-19", False, "Dragon Boat Festival", False, "official"),
    ("2026-09-20", True, None, True, "official"),
    ("2026-09-25", False, "Mid-Autumn Festival", False, "official"),
    ("2026-10-07", False, "National Day", False, "official"),
    ("2026-10-08", True, None, False, "official"),
    ("2026-10-10", True, None, True, "official"),
    # 2027: predicted until the notice is out
    ("2027-02-05", False, "Spring Festival", False, "provisional"),  # the Eve, a Friday
    ("2027-02-12", False, "Spring Festival", False, "provisional"),
    ("2027-02-13", False, None, False, "provisional"),  # no make-up Saturday guessed
    ("2027-02-15", True, None, False, "provisional"),
    ("2027-06-09", False, "Dragon Boat Festival", False, "provisional"),
    ("2027-10-07", False, "National Day", False, "provisional"),
    # outside the data: plain Monday-Friday, flagged
    ("2024-10-01", True, None, False, "fallback"),  # a real holiday the data does not hold
    ("2028-01-29", False, None, False, "fallback"),  # Saturday
    ("2028-01-31", True, None, False, "fallback"),  # Monday
]


@pytest.mark.parametrize(("day", "working", "holiday", "makeup", "status"), DAYS)
def test_day(day: str, working: bool, holiday: str | None, makeup: bool, status: str) -> None:
    info = CAL.info(d(day))
    assert (info.working, info.holiday, info.makeup_workday, info.status) == (
        working,
        holiday,
        makeup,
        status,
    )
    assert CAL.is_working_day(d(day)) is working
    assert CAL.holiday_name(d(day)) == holiday


@pytest.mark.parametrize(
    ("year", "status", "provisional", "working_days"),
    [
        (2025, "official", False, 248),
        (2026, "official", False, 248),
        (2027, "provisional", True, 243),
        (2028, "fallback", False, 260),  # Monday-Friday only
    ],
)
def test_year(year: int, status: str, provisional: bool, working_days: int) -> None:
    assert CAL.status(year) == status
    assert CAL.is_provisional(year) is provisional
    assert CAL.covers(year) is (status != "fallback")
    days = (date(year, 1, 1) + timedelta(days=i) for i in range(366))
    assert sum(CAL.is_working_day(day) for day in days if day.year == year) == working_days


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-02-13", "2026-02-13"),  # a working Friday is its own answer
        ("2026-02-15", "2026-02-24"),  # Spring Festival 2026 runs to Monday 23rd
        ("2025-10-01", "2025-10-09"),  # National Day + Mid-Autumn, 8 days
        ("2026-01-01", "2026-01-04"),  # the make-up Sunday comes first
        ("2026-03-07", "2026-03-09"),  # ordinary weekend
        ("2027-02-05", "2027-02-15"),  # provisional Spring Festival
        ("2027-12-31", "2027-12-31"),  # a Friday at the edge of the data
        ("2028-01-01", "2028-01-03"),  # fallback year: the Saturday goes to Monday
    ],
)
def test_next_working_day(start: str, expected: str) -> None:
    assert CAL.next_working_day(d(start)) == d(expected)


def test_packaged_years_say_where_they_come_from() -> None:
    for year in CAL.years.values():
        assert year.source, year.year
        if year.provisional:
            assert "notice" in year.note, year.year


def test_packaged_file_is_read_once() -> None:
    assert load_calendar() is load_calendar()


SPECIAL_HOLIDAY: dict[str, Any] = {
    "schema": 1,
    "calendar": "cn-guangdong",
    "years": {
        "2026": {
            "holidays": [{"name": "Local election day", "from": "2026-03-03", "to": "2026-03-03"}],
            "workdays": ["2026-03-08"],
        }
    },
}


def test_loader_accepts_a_mapping_and_a_file(tmp_path: Path) -> None:
    path = tmp_path / "site_calendar.json"
    path.write_text(json.dumps(SPECIAL_HOLIDAY), encoding="utf-8")
    for calendar in (load_calendar(SPECIAL_HOLIDAY), load_calendar(path), load_calendar(str(path))):
        assert calendar.name == "cn-guangdong"
        assert calendar.holiday_name(d("2026-03-03")) == "Local election day"
        assert calendar.is_working_day(d("2026-03-08"))  # a Sunday made a working day
        assert calendar.status(2025) == "fallback"


def year_with(**changes: Any) -> dict[str, Any]:
    year: dict[str, Any] = {
        "holidays": [{"name": "Spring Festival", "from": "2026-02-15", "to": "2026-02-23"}],
        "workdays": ["2026-02-14"],
    }
    year.update(changes)
    return {"schema": 1, "years": {"2026": year}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema": 2, "years": {}}, "schema 2"),
        ({"schema": 1}, "expected 'years'"),
        ({"years": {"next": {}}}, "'next' is not a year"),
        (
            year_with(
                holidays=[{"name": "Spring Festival", "from": "2026-02-23", "to": "2026-02-15"}]
            ),
            "before it starts",
        ),
        (year_with(holidays=[{"from": "2026-02-15"}]), "expected {name, from, to}"),
        (year_with(workdays=["2026-02-31"]), "'2026-02-31' is not a date"),
        (year_with(workdays=["2026-02-16"]), "listed both as a holiday and as a workday"),
        (year_with(workdays=["2026-03-02"]), "is not a Saturday or Sunday"),
        (year_with(workdays=["2025-02-08"]), "belongs to another year"),
        (year_with(provisional="yes"), "provisional must be true or false"),
    ],
)
def test_loader_names_the_flaw(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_calendar(data)


def test_a_calendar_without_working_days_fails_clearly() -> None:
    everything_off = {
        "years": {
            str(year): {
                "holidays": [{"name": "Closed", "from": f"{year}-01-01", "to": f"{year}-12-31"}]
            }
            for year in (2026, 2027)
        }
    }
    calendar: WorkdayCalendar = parse_calendar(everything_off)
    with pytest.raises(ValueError, match="no working day"):
        calendar.next_working_day(d("2026-01-01"))

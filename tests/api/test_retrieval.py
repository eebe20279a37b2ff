"""Same-working-day due times for retrieval requests, on the real Chinese calendar."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from api.recordings.retrieval import due_at
from dialer.workdays import load_calendar

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("asked", "due"),
    [
        ("2026-11-24T10:00", "2026-11-24T18:00"),  # a Tuesday morning: today
        ("2026-11-24T17:59", "2026-11-24T18:00"),
        ("2026-11-24T18:00", "2026-11-25T18:00"),  # after hours: next working day
        ("2026-11-27T19:00", "2026-11-30T18:00"),  # Friday evening: Monday
        ("2026-11-28T10:00", "2026-11-30T18:00"),  # Saturday
        ("2026-02-16T10:00", "2026-02-24T18:00"),  # Spring Festival holiday
        ("2026-02-14T10:00", "2026-02-14T18:00"),  # a make-up working Saturday
        ("2026-09-30T20:00", "2026-10-08T18:00"),  # National Day week (Oct 1-7)
    ],
)
def test_due_at(asked: str, due: str) -> None:
    requested = datetime.fromisoformat(asked).replace(tzinfo=SH)
    expected = datetime.fromisoformat(due).replace(tzinfo=SH)
    assert due_at(requested, SH, load_calendar(), time(18)) == expected

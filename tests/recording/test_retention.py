"""Retention dates: at least two years, whole seconds, never shortened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recording.retention import RetentionError, deletable, extend, retain_until

T = datetime(2026, 11, 24, 9, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("recorded_at", "days", "expected"),
    [
        (T, 730, datetime(2028, 11, 23, 9, 30, 15, tzinfo=UTC)),
        (T, 1095, datetime(2029, 11, 23, 9, 30, 15, tzinfo=UTC)),  # client asks for 3 years
        (T.replace(microsecond=1), 730, datetime(2028, 11, 23, 9, 30, 16, tzinfo=UTC)),  # round up
    ],
)
def test_retain_until(recorded_at: datetime, days: int, expected: datetime) -> None:
    assert retain_until(recorded_at, days) == expected


def test_less_than_two_years_is_refused() -> None:
    with pytest.raises(RetentionError, match="below the 730-day minimum"):
        retain_until(T, 729)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        retain_until(T.replace(tzinfo=None), 730)


@pytest.mark.parametrize(
    ("current", "proposed", "allowed"),
    [
        (T, T + timedelta(days=365), True),
        (T, T, True),
        (T, T - timedelta(seconds=1), False),  # not even an admin may shorten it
    ],
)
def test_extend_only(current: datetime, proposed: datetime, allowed: bool) -> None:
    if allowed:
        assert extend(current, proposed) == proposed
    else:
        with pytest.raises(RetentionError, match="can only be extended"):
            extend(current, proposed)


@pytest.mark.parametrize(
    ("now", "hold", "expected"),
    [
        (T - timedelta(seconds=1), False, False),
        (T, False, True),
        (T + timedelta(days=1), True, False),  # legal hold outlives retention
    ],
)
def test_deletable(now: datetime, hold: bool, expected: bool) -> None:
    assert deletable(now, T, hold) is expected

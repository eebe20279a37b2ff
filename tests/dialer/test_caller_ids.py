"""Caller-ID health: a run of blocked refusals retires a caller ID for a cool-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.caller_ids import Health, Outcome, retired

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _calls(*statuses: int, minutes_ago: float = 1) -> list[tuple[datetime, int]]:
    """Newest first, one minute apart, the newest `minutes_ago` before NOW."""
    start = NOW - timedelta(minutes=minutes_ago)
    return [(start - timedelta(minutes=i), status) for i, status in enumerate(statuses)]


@pytest.mark.parametrize(
    ("recent", "out"),
    [
        (_calls(403, 403, 403, 403, 403), True),
        (_calls(603, 608, 607, 403, 603), True),  # any mix of blocking refusals
        (_calls(403, 403, 403, 403), False),  # not yet a run of 5
        (_calls(403, 403, 200, 403, 403, 403), False),  # an answered call breaks the run
        (_calls(486, 403, 403, 403, 403, 403), False),  # the newest call got through to busy
        (_calls(404, 404, 404, 404, 404), False),  # nonexistent numbers say nothing of us
        (_calls(403, 403, 403, 403, 403, minutes_ago=24 * 60 - 1), True),
        (_calls(403, 403, 403, 403, 403, minutes_ago=24 * 60), False),  # cool-off over: retry
        ([], False),
    ],
)
def test_retired(recent: list[tuple[datetime, int]], out: bool) -> None:
    assert retired(recent, NOW) is out


def test_thresholds_are_settings() -> None:
    strict = Health(run=2, cooloff=timedelta(hours=1))
    assert retired(_calls(403, 403), NOW, strict)
    assert not retired(_calls(403, 403, minutes_ago=61), NOW, strict)


def test_blocked_announcements_count_like_blocking_codes() -> None:
    """Carriers that say "the call has been blocked" and then send a generic 480 or 404."""
    said_blocked = [Outcome(at, 480, announced_blocked=True) for at, _ in _calls(*[480] * 5)]
    assert retired(said_blocked, NOW)
    mixed = [*said_blocked[:2], *(Outcome(at, s) for at, s in _calls(403, 603, 608))]
    assert retired(mixed, NOW)
    heard_nothing = [Outcome(at, 480) for at, _ in _calls(*[480] * 5)]
    assert not retired(heard_nothing, NOW)  # a 480 alone says nothing about our caller ID
    one_got_through = [*said_blocked[:4], Outcome(NOW, 486)]
    assert not retired(one_got_through, NOW)


@pytest.mark.parametrize(
    ("recent", "trying", "out"),
    [
        (_calls(403, 403, 403, 403, 403, minutes_ago=24 * 60), 0, False),  # the one trial call
        (_calls(403, 403, 403, 403, 403, minutes_ago=24 * 60), 1, True),  # one is trying it now
        (_calls(403, 403, 403, 403, 403, minutes_ago=24 * 60), 3, True),
        (_calls(200, 403, 403, 403, 403), 4, False),  # healthy: calls in flight change nothing
        (_calls(403, 403, 403, 403, 403), 0, True),  # within the cool-off
    ],
)
def test_one_call_at_a_time_tries_a_caller_id_after_its_cooloff(
    recent: list[tuple[datetime, int]], trying: int, out: bool
) -> None:
    """Calls in flight count: a burst of calls cannot all be the caller ID's one trial."""
    assert retired(recent, NOW, Health(), trying) is out

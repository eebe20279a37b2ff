"""When an ended contract's client data goes, and which passes are audited (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.recordings.contract_rules import Step, audited, contract_step

AFTER = datetime(2028, 11, 24, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("now", "deleted_at", "step"),
    [
        (AFTER - timedelta(days=365), None, Step.WAIT),
        (AFTER - SECOND, None, Step.WAIT),
        (AFTER, None, Step.DELETE),  # the date itself: the last recording's retention is over
        (AFTER + SECOND, None, Step.DELETE),
        (AFTER + timedelta(days=400), None, Step.DELETE),  # the job was down: catch up
        (AFTER + timedelta(hours=1), AFTER, Step.SWEEP),
        (AFTER + timedelta(days=30), AFTER + timedelta(days=1), Step.SWEEP),
        (AFTER - SECOND, AFTER - timedelta(days=1), Step.WAIT),  # a clock set back: wait
    ],
)
def test_contract_step(now: datetime, deleted_at: datetime | None, step: Step) -> None:
    assert contract_step(now, AFTER, deleted_at) is step


@pytest.mark.parametrize(
    ("step", "counts", "expected"),
    [
        (Step.DELETE, {"debtors": 0, "transcripts": 0}, True),  # proof it ran, even if empty
        (Step.DELETE, {"debtors": 3}, True),
        (Step.DELETE, {}, True),
        (Step.SWEEP, {"debtors": 0, "transcripts": 0}, False),  # hourly, nothing new
        (Step.SWEEP, {"debtors": 0, "transcripts": 1}, True),  # something arrived late
        (Step.SWEEP, {}, False),
        (Step.WAIT, {"debtors": 2}, False),
    ],
)
def test_which_passes_are_audited(step: Step, counts: dict[str, int], expected: bool) -> None:
    assert audited(step, counts) is expected

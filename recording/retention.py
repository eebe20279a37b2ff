"""Retention dates: pure decisions, no I/O.

REQUIREMENTS §3: at least two years, longer where a client requires it, and
never shortened for a stored recording (WORM: S3 COMPLIANCE mode refuses it
anyway; this module makes Dialguard refuse before S3 has to).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from recording.errors import RecordingError

MIN_RETENTION_DAYS = 730


class RetentionError(RecordingError):
    """A retention change that would shorten or break WORM."""


def retain_until(recorded_at: datetime, days: int) -> datetime:
    if recorded_at.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware")
    if days < MIN_RETENTION_DAYS:
        raise RetentionError(
            f"retention of {days} days is below the {MIN_RETENTION_DAYS}-day minimum",
            hint=f"use at least {MIN_RETENTION_DAYS} days",
        )
    # Whole seconds: S3 object-lock dates carry no fractions, and a rounded-down
    # date would end retention early.
    until = recorded_at + timedelta(days=days)
    return until.replace(microsecond=0) + (
        timedelta(seconds=1) if until.microsecond else timedelta()
    )


def extend(current: datetime, proposed: datetime) -> datetime:
    """The new retention date; refusing any date earlier than the current one."""
    if proposed < current:
        raise RetentionError(
            f"retention can only be extended: {proposed.isoformat()} is before "
            f"{current.isoformat()}",
            hint="retention of a stored recording cannot be shortened, not even by an admin",
        )
    return proposed


def deletable(now: datetime, until: datetime, legal_hold: bool) -> bool:
    return not legal_hold and now >= until

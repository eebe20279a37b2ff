"""Retention dates: pure decisions, no I/O.

REQUIREMENTS §3: at least two years, longer where a client requires it, and
never shortened for a stored recording (WORM: S3 COMPLIANCE mode refuses it
anyway; this module makes Dialguard refuse before S3 has to). Never longer
than a maximum either (the site's, or a client's lower one): a date decades
away would make a recording undeletable, while REQUIREMENTS §5 has a
client's data deleted when its contract ends. After that end no retention
of the client grows, unless the recording is under a legal hold.
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


def extension(
    recorded_at: datetime,
    current: datetime,
    proposed: datetime,
    max_days: int,
    contract_ended: datetime | None = None,
    legal_hold: bool = False,
) -> datetime:
    """The new retention date of an extension, or RetentionError saying which rule refuses it."""
    new = extend(current, proposed)
    if contract_ended is not None and not legal_hold and new > current:
        raise RetentionError(
            f"the client's contract ended on {contract_ended:%Y-%m-%d}: its recordings are "
            "deleted when their retention ends, which cannot be extended now",
            hint="place a legal hold to keep this recording for a dispute or a court",
        )
    limit = retain_until(recorded_at, max_days)
    if new > limit:
        raise RetentionError(
            f"retention may run at most {max_days} days after the recording, "
            f"until {limit.isoformat()}",
            hint="a legal hold keeps a recording past its retention while it is needed",
        )
    return new

"""What the uploader's health line says: a pure decision from measured facts.

The uploader was once found saying "ok, 0 waiting in spool" with three
recordings waiting and storage frozen: the line was the result of its last
finished round, and a round stuck in a request never finished. So the
heartbeat now measures, every beat, what waits and for how long, and what
request has been running how long; this module turns that into the line
`/healthz` and the console show. No I/O here, so the rules can be read and
tested on their own.

An upload is stuck, and the line an ALERT, when one request has run for
`STUCK_AFTER` (storage frozen or unreachable without refusing), or when
recordings have waited that long and none was stored for as long (a lease
held by a process that hangs, storage refusing): both within 30 s of the
cause, with a 2 s heartbeat. Every bucket that refused in the last round is
named, by label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Seconds after which a request, or a backlog that does not move, is an ALERT.
STUCK_AFTER = 20.0


@dataclass(frozen=True)
class Backlog:
    """What waits in the spool, measured in the database just now."""

    waiting: int
    oldest_s: float | None = None  # age of the oldest waiting recording
    oldest_id: str | None = None
    oldest_holder: str | None = None  # who holds its upload lease, if anyone


@dataclass(frozen=True)
class Activity:
    """What the uploader is doing, as its own thread last said."""

    busy: str | None = None  # "upload of <id> to <bucket>"
    busy_s: float = 0.0  # for how long
    idle_s: float = 0.0  # seconds since a recording was last stored (or the uploader began)
    problems: Mapping[str, str] | None = None  # bucket label -> why it refused, last round


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def waiting_line(backlog: Backlog) -> str:
    """`3 waiting in spool, oldest 2 min` (the oldest only when something waits)."""
    line = f"{backlog.waiting} waiting in spool"
    if backlog.waiting and backlog.oldest_s is not None:
        line += f", oldest {_duration(backlog.oldest_s)}"
    return line


def stuck(backlog: Backlog, activity: Activity) -> tuple[str, str] | None:
    """(cause, clause) when uploads are stuck: a request without answer for STUCK_AFTER, or,
    while no bucket refuses, a backlog that has not moved for as long. The cause stays the
    same while it lasts (the clause's durations do not), so it is logged once."""
    if activity.busy is not None and activity.busy_s >= STUCK_AFTER:
        return activity.busy, (
            f"{activity.busy} has had no answer for {_duration(activity.busy_s)}: "
            "storage is frozen or unreachable"
        )
    if (
        not activity.problems
        and backlog.waiting
        and backlog.oldest_s is not None
        and backlog.oldest_s >= STUCK_AFTER
        and activity.idle_s >= STUCK_AFTER
    ):
        holder = f", its upload held by {backlog.oldest_holder}" if backlog.oldest_holder else ""
        # A request already in flight is the likely cause: named before it reaches STUCK_AFTER
        # itself (it began after the oldest recording was spooled, so it always lags).
        pending = (
            f"; {activity.busy} has had no answer for {_duration(activity.busy_s)}"
            if activity.busy is not None
            else ""
        )
        return f"backlog at {backlog.oldest_id}", (
            f"uploads stuck: nothing stored for {_duration(activity.idle_s)} "
            f"(oldest waiting {backlog.oldest_id}{holder}){pending}"
        )
    return None


def alarms(backlog: Backlog, activity: Activity) -> list[str]:
    """What is wrong, one plain clause each (empty: nothing): the ALERT of the health line."""
    found = stuck(backlog, activity)
    return list((activity.problems or {}).values()) + ([found[1]] if found else [])

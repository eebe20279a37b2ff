"""Caller-ID health: a caller ID that carriers or callees keep refusing leaves the rotation.

Carriers block presented numbers that collect complaints; once that starts,
every call from the number fails with 403/603/607/608 and agents lose their
day. A run of such refusals takes the caller ID out of the pool for a
cool-off, after which one call tries it again. Pure: the caller passes the
recent results and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

BLOCKED = frozenset({403, 603, 607, 608})  # refused by the carrier or flagged as unwanted


@dataclass(frozen=True)
class Health:
    run: int = 5  # this many refusals in a row retire a caller ID
    cooloff: timedelta = timedelta(hours=24)  # then one call tries it again


def retired(
    recent: Sequence[tuple[datetime, int]], now: datetime, health: Health = Health()
) -> bool:
    """Whether a caller ID is out of the rotation, given its calls' (time, status), newest first.

    Out when its last `run` placed calls were all refused as blocked and the
    latest of them is younger than the cool-off.
    """
    if len(recent) < health.run:
        return False
    last = recent[: health.run]
    if not all(status in BLOCKED for _, status in last):
        return False
    return now - last[0][0] < health.cooloff

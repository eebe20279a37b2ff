"""Caller-ID health: a caller ID that carriers or callees keep refusing leaves the rotation.

Carriers block presented numbers that collect complaints; once that starts,
every call from the number fails with 403/603/607/608 and agents lose their
day. Some carriers say so only in words: a generic 480 or 404 after an early
media announcement such as "您的呼叫已被拦截" or "the call has been blocked"
(recognised by dialer/announcements.py). Either kind of refusal counts, and a
run of them takes the caller ID out of the pool for a cool-off, after which
one call tries it again. Pure: the caller passes the recent results and the
time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

BLOCKED = frozenset({403, 603, 607, 608})  # refused by the carrier or flagged as unwanted


@dataclass(frozen=True)
class Health:
    run: int = 5  # this many refusals in a row retire a caller ID
    cooloff: timedelta = timedelta(hours=24)  # then one call tries it again


class Outcome(NamedTuple):
    """How one placed call from a caller ID ended, as far as its health is concerned."""

    at: datetime
    sip_status: int
    announced_blocked: bool = False  # the early-media announcement said our number is blocked

    @property
    def blocked(self) -> bool:
        return self.sip_status in BLOCKED or self.announced_blocked


def retired(
    recent: Sequence[Outcome | tuple[datetime, int]],
    now: datetime,
    health: Health = Health(),
    trying: int = 0,
) -> bool:
    """Whether a caller ID is out of the rotation, given its placed calls' outcomes, newest first.

    Out when its last `run` ended calls were all refused as blocked (by code
    or by announcement) and the latest of them is younger than the cool-off.
    After the cool-off one call tries it again: `trying` counts the calls on
    it still in flight (their outcome unknown), and while one is, the caller
    ID stays out for every other call, so a burst of calls cannot all be the
    one trial.
    """
    if len(recent) < health.run:
        return False
    last = [Outcome(*item) for item in recent[: health.run]]
    if not all(outcome.blocked for outcome in last):
        return False
    return now - last[0].at < health.cooloff or trying > 0

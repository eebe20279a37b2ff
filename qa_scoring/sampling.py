"""The weekly review sample: which of an agent's calls a QA reviewer listens to in full.

Reviewers cannot hear every call, so each week a few calls per agent are
drawn at random (5% by default, never fewer than 4, or all of them when an
agent made fewer). The draw is stratified by collection stage, so an agent
who mostly works early-stage accounts is still heard on the late-stage calls
where the worst conduct happens, and each stage gets its proportional share.

The stage is the debtor's (`debtors.stage`, as the collection system sends
it: early, late, legal ...). A call whose debtor cannot be told (an outside
recording without an account, a number no debtor holds, or one held by
accounts in different stages) is in the "unknown" stratum: it is still drawn
from, never dropped.

Reproducible: the same calls and the same seed always give the same sample,
so anyone holding the recorded seed can check that a sample was not picked by
hand. Inputs are sorted by id first (database order is not stable), and each
agent's draw uses its own generator seeded with the seed and the agent's
name, so a late call for one agent does not reshuffle everybody else's.

Pure: no database, no clock.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_RATE = 0.05
DEFAULT_MINIMUM = 4
UNKNOWN_STAGE = "unknown"


@dataclass(frozen=True)
class SampleCall:
    id: str
    agent: str
    stage: str = UNKNOWN_STAGE


def stage_of(candidates: Iterable[str]) -> str:
    """The stage the candidate debtors of a call agree on, else "unknown".

    A number shared by two accounts (a couple, a guarantor) can lead to
    debtors in different stages; picking one would put the call in a stratum
    by chance.
    """
    stages = {stage.strip() for stage in candidates if stage and stage.strip()}
    return stages.pop() if len(stages) == 1 else UNKNOWN_STAGE


def sample_size(calls: int, rate: float = DEFAULT_RATE, minimum: int = DEFAULT_MINIMUM) -> int:
    """How many of an agent's `calls` to draw: the rate rounded up, at least `minimum`, at most all.

    Rounded up so that 5% means "at least 5%": a reviewer may hear one call
    more than the rate, never one fewer.
    """
    if calls <= 0:
        return 0
    return min(calls, max(minimum, math.ceil(rate * calls)))


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """`total` draws shared among strata in proportion to their sizes (largest remainder).

    When there are at least as many draws as strata, every stratum gets one
    even if its share rounds to nothing: a stage an agent rarely works is the
    one a proportional rule would silently never review.
    """
    population = sum(sizes.values())
    if total <= 0 or population == 0:
        return {name: 0 for name in sizes}
    exact = {name: total * size / population for name, size in sizes.items()}
    quota = {name: math.floor(share) for name, share in exact.items()}
    by_remainder = sorted(sizes, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: total - sum(quota.values())]:
        quota[name] += 1
    if total >= len(sizes):
        for name in sorted(sizes):
            if quota[name] == 0:
                richest = max(sorted(quota), key=lambda other: quota[other])
                quota[richest] -= 1
                quota[name] += 1
    return quota


def draw_sample(
    calls: Iterable[SampleCall],
    seed: str | int,
    rate: float = DEFAULT_RATE,
    minimum: int = DEFAULT_MINIMUM,
) -> list[SampleCall]:
    """The sampled calls, ordered by agent then id."""
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be above 0 and at most 1, not {rate}")
    if minimum < 0:
        raise ValueError(f"minimum must not be negative, not {minimum}")
    by_agent: dict[str, dict[str, list[SampleCall]]] = defaultdict(lambda: defaultdict(list))
    for call in sorted(calls, key=lambda c: c.id):
        by_agent[call.agent][call.stage].append(call)
    drawn: list[SampleCall] = []
    for agent in sorted(by_agent):
        strata = by_agent[agent]
        total = sample_size(sum(len(s) for s in strata.values()), rate, minimum)
        quota = allocate({stage: len(members) for stage, members in strata.items()}, total)
        rng = random.Random(f"{seed}/{agent}")  # noqa: S311 - repeatable by design, not secret
        for stage in sorted(strata):
            drawn.extend(_pick(rng, strata[stage], quota[stage]))
    return sorted(drawn, key=lambda c: (c.agent, c.id))


def _pick(rng: random.Random, members: Sequence[SampleCall], count: int) -> list[SampleCall]:
    return rng.sample(list(members), count) if count else []

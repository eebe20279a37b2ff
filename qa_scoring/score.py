"""One number per call, from what is proven, and the result shape the CLI and API print.

Penalties by severity (points off 100; the score never goes below 0):

    level 4 (四级违规: threats, impersonation, disclosure, personal collection)  -40
    level 3 (三级违规: insults, defamation, harassing third parties, ...)       -25
    level 2 (二级违规: provocation, false promises, ...)                       -10
    level 1 (一级违规)                                                          -5
    each required statement missing (identity, overdue facts, how to repay)   -10

Why these numbers: one level-4 violation plus one level-3 must fail a call
outright (35 left), a single level-4 must leave it below any passing mark a
centre would set (60), and a forgotten required line must cost about as much as
a level-2 slip, since both are fixed by coaching rather than discipline.

Only proven flags count. A flag resting on words the ASR was unsure of
(`needs_listening`) is listed for a reviewer but costs nothing until a person
confirms it; otherwise an agent would be penalised for the recogniser's errors.
A rule is penalised once per call however often it matched: the flags list
every occurrence so the reviewer can hear them all, but repeating one phrase is
one violation, and it should not outweigh two different ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qa_scoring.rules import Flag, Missing

WEIGHTS: dict[int, int] = {4: 40, 3: 25, 2: 10, 1: 5}
MISSING_WEIGHT = 10
FULL_SCORE = 100


def compute_score(flags: Iterable[Flag], missing: Iterable[Missing]) -> int:
    worst: dict[str, int] = {}
    for flag in flags:
        if flag.proven:
            worst[flag.rule] = max(worst.get(flag.rule, 0), flag.severity)
    penalty = sum(WEIGHTS[level] for level in worst.values())
    penalty += MISSING_WEIGHT * sum(1 for _ in missing)
    return max(0, FULL_SCORE - penalty)


@dataclass(frozen=True)
class CheckResult:
    score: int
    flags: tuple[Flag, ...]
    missing: tuple[Missing, ...]
    warnings: tuple[str, ...] = ()
    pack: str = ""

    @property
    def to_listen(self) -> tuple[Flag, ...]:
        return tuple(f for f in self.flags if f.needs_listening)

    def to_json(self) -> dict[str, Any]:
        """{"score", "flags", "missing"}, plus "warnings" only when there is something to say."""
        result: dict[str, Any] = {
            "score": self.score,
            "flags": [f.to_json() for f in self.flags],
            "missing": [m.to_json() for m in self.missing],
        }
        if self.warnings:
            result["warnings"] = list(self.warnings)
        return result

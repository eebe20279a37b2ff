"""The review of one flag: who may move it from which state to which, and with what said.

The machine only proposes flags. A QA reviewer confirms or dismisses each
one; the agent whose call it is may appeal a confirmed flag; a supervisor
decides the appeal, and that decision is final. Every step that goes against
someone (a dismissal, an appeal, a decision) must say why, because the
comment is what the next person in the chain reads.

Pure: no database, no clock. The API applies the returned state and writes
the history and the audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qa_scoring.errors import ReviewError
from qa_scoring.score import FULL_SCORE, MISSING_WEIGHT, WEIGHTS

OPEN = "open"
CONFIRMED = "confirmed"
DISMISSED = "dismissed"
APPEALED = "appealed"
UPHELD = "upheld"
OVERTURNED = "overturned"

REVIEWERS = frozenset({"qa", "supervisor"})
DECIDERS = frozenset({"supervisor", "admin"})
APPELLANTS = frozenset({"agent"})

__all__ = [
    "CommentRequired",
    "InvalidTransition",
    "NotAllowed",
    "ReviewError",
    "ReviewedFlag",
    "Step",
    "next_state",
    "reviewed_score",
]


class NotAllowed(ReviewError):
    """The person may not take this step at all (wrong role, or not their own call)."""


class CommentRequired(ReviewError):
    """The step needs a reason and none was given."""


class InvalidTransition(ReviewError):
    """The step does not apply to the flag's current state (it was already decided)."""


@dataclass(frozen=True)
class Step:
    """One allowed move: from a state, by one of these roles, to a state."""

    source: str
    target: str
    roles: frozenset[str]
    comment_required: bool
    own_flag_only: bool = False


STEPS: dict[str, Step] = {
    "confirm": Step(OPEN, CONFIRMED, REVIEWERS, comment_required=False),
    "dismiss": Step(OPEN, DISMISSED, REVIEWERS, comment_required=True),
    "appeal": Step(CONFIRMED, APPEALED, APPELLANTS, comment_required=True, own_flag_only=True),
    # The agent appealed with a reason; the decision owes them one back either way.
    "uphold": Step(APPEALED, UPHELD, DECIDERS, comment_required=True),
    "overturn": Step(APPEALED, OVERTURNED, DECIDERS, comment_required=True),
}


def next_state(
    state: str,
    action: str,
    role: str,
    actor: str,
    flag_agent: str,
    comment: str | None = None,
) -> str:
    """The flag's state after `actor` (with `role`) takes `action`; ReviewError if not allowed.

    Permission is checked before the state, so an agent poking at someone
    else's flag learns nothing about where that flag stands.
    """
    step = STEPS.get(action)
    if step is None:
        raise InvalidTransition(
            f"unknown review action '{action}'", hint=f"use one of: {', '.join(STEPS)}"
        )
    if role not in step.roles:
        raise NotAllowed(f"the {role} role may not {action} a flag")
    if step.own_flag_only and actor != flag_agent:
        raise NotAllowed(f"only {flag_agent}, whose call it is, may {action} this flag")
    if state != step.source:
        article = "an" if step.source[0] in "aeiou" else "a"
        raise InvalidTransition(
            f"a flag that is {state} cannot be {_past(action)}; "
            f"only {article} {step.source} one can"
        )
    if step.comment_required and not (comment and comment.strip()):
        raise CommentRequired(f"say why: a comment is required to {action} a flag")
    return step.target


def _past(action: str) -> str:
    return {"confirm": "confirmed", "dismiss": "dismissed", "uphold": "upheld"}.get(
        action, action + "ed"
    )


@dataclass(frozen=True)
class ReviewedFlag:
    rule: str
    severity: int
    needs_listening: bool
    state: str


#: States in which a flag costs the agent points. An open flag on clear words
#: counts (the machine's word stands until a person says otherwise); an appeal
#: does not suspend it until a supervisor decides.
_COUNTING = frozenset({CONFIRMED, APPEALED, UPHELD})


def reviewed_score(flags: Iterable[ReviewedFlag], missing: int) -> int:
    """The call's score after review: dismissed and overturned flags no longer cost anything,
    and a flag on uncertain words starts to cost once a person confirms it.

    Same weights as the machine score (`qa_scoring.score`), so an unreviewed
    call scores exactly what the machine said.
    """
    worst: dict[str, int] = {}
    for flag in flags:
        counts = flag.state in _COUNTING or (flag.state == OPEN and not flag.needs_listening)
        if counts:
            worst[flag.rule] = max(worst.get(flag.rule, 0), flag.severity)
    penalty = sum(WEIGHTS[level] for level in worst.values()) + MISSING_WEIGHT * missing
    return max(0, FULL_SCORE - penalty)

"""The flag review state machine: who may move a flag where, and what the score becomes."""

from __future__ import annotations

import pytest

from qa_scoring.errors import QaError, ReviewError
from qa_scoring.review import (
    CommentRequired,
    InvalidTransition,
    NotAllowed,
    ReviewedFlag,
    next_state,
    reviewed_score,
)

OWNER = "agent7"


@pytest.mark.parametrize(
    ("state", "action", "role", "actor", "comment", "expected"),
    [
        ("open", "confirm", "qa", "qa.lin", None, "confirmed"),
        ("open", "confirm", "supervisor", "sup1", "", "confirmed"),
        ("open", "dismiss", "qa", "qa.lin", "the debtor said it, not the agent", "dismissed"),
        ("confirmed", "appeal", "agent", OWNER, "I was quoting the debtor", "appealed"),
        ("appealed", "uphold", "supervisor", "sup1", "the recording is clear", "upheld"),
        ("appealed", "overturn", "admin", "root", "quoted, as the agent says", "overturned"),
    ],
)
def test_allowed_steps(
    state: str, action: str, role: str, actor: str, comment: str | None, expected: str
) -> None:
    assert next_state(state, action, role, actor, OWNER, comment) == expected


@pytest.mark.parametrize(
    ("state", "action", "role", "actor", "comment", "error", "message"),
    [
        # the wrong person
        ("open", "confirm", "agent", OWNER, None, NotAllowed, "agent role may not confirm"),
        ("open", "dismiss", "auditor", "aud", "x", NotAllowed, "auditor role"),
        ("confirmed", "appeal", "agent", "agent9", "not me", NotAllowed, "only agent7"),
        ("confirmed", "appeal", "qa", "qa.lin", "why", NotAllowed, "qa role may not appeal"),
        ("appealed", "uphold", "qa", "qa.lin", "ok", NotAllowed, "qa role may not uphold"),
        ("appealed", "overturn", "agent", OWNER, "pls", NotAllowed, "agent role"),
        # the wrong moment
        ("confirmed", "confirm", "qa", "qa.lin", None, InvalidTransition, "only an open one"),
        ("dismissed", "confirm", "qa", "qa.lin", None, InvalidTransition, "is dismissed"),
        ("open", "appeal", "agent", OWNER, "why", InvalidTransition, "only a confirmed one"),
        ("dismissed", "appeal", "agent", OWNER, "why", InvalidTransition, "only a confirmed"),
        ("upheld", "appeal", "agent", OWNER, "again", InvalidTransition, "is upheld"),
        ("confirmed", "uphold", "supervisor", "sup1", "x", InvalidTransition, "only an appealed"),
        ("overturned", "uphold", "supervisor", "sup1", "x", InvalidTransition, "is overturned"),
        ("open", "escalate", "supervisor", "sup1", "x", InvalidTransition, "unknown review action"),
        # no reason given
        ("open", "dismiss", "qa", "qa.lin", None, CommentRequired, "comment is required"),
        ("open", "dismiss", "qa", "qa.lin", "   ", CommentRequired, "comment is required"),
        ("confirmed", "appeal", "agent", OWNER, "", CommentRequired, "comment is required"),
        ("appealed", "overturn", "supervisor", "sup1", None, CommentRequired, "say why"),
    ],
)
def test_refused_steps(
    state: str,
    action: str,
    role: str,
    actor: str,
    comment: str | None,
    error: type[ReviewError],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as raised:
        next_state(state, action, role, actor, OWNER, comment)
    assert isinstance(raised.value, QaError)  # the CLI and API catch the package's errors once


def test_another_agents_flag_reveals_nothing_about_its_state() -> None:
    # permission is checked first: the same answer whatever state the flag is in
    for state in ("open", "confirmed", "upheld"):
        with pytest.raises(NotAllowed):
            next_state(state, "appeal", "agent", "agent9", OWNER, "not me")


@pytest.mark.parametrize(
    ("flags", "missing", "expected"),
    [
        ([], 0, 100),
        ([ReviewedFlag("threat", 4, False, "open")], 0, 60),  # machine's word stands
        ([ReviewedFlag("threat", 4, True, "open")], 0, 100),  # uncertain words: not yet
        ([ReviewedFlag("threat", 4, True, "confirmed")], 0, 60),  # a person heard it
        ([ReviewedFlag("threat", 4, False, "dismissed")], 0, 100),
        ([ReviewedFlag("threat", 4, False, "appealed")], 0, 60),  # pending appeal still counts
        ([ReviewedFlag("threat", 4, False, "upheld")], 1, 50),
        ([ReviewedFlag("threat", 4, False, "overturned")], 1, 90),
        (
            [ReviewedFlag("insult", 3, False, "open"), ReviewedFlag("insult", 3, False, "open")],
            0,
            75,
        ),
        ([ReviewedFlag("a", 4, False, "upheld"), ReviewedFlag("b", 4, False, "upheld")], 3, 0),
    ],
)
def test_reviewed_score(flags: list[ReviewedFlag], missing: int, expected: int) -> None:
    assert reviewed_score(flags, missing) == expected

"""Which decoded segments are kept: a table of what Whisper does on silence and noise."""

from __future__ import annotations

import pytest

from transcribe.guards import Candidate, compression_ratio, keep


def _c(
    text: str, nsp: float = 0.05, lp: float = -0.3, conf: float = 0.85, words: int = 0
) -> Candidate:
    return Candidate(text, nsp, lp, conf, words or max(1, len(text.split())))


@pytest.mark.parametrize(
    ("candidate", "kept", "why"),
    [
        (_c("I will pay on Friday."), True, "ordinary speech"),
        (_c("我下周五还款。", words=4), True, "Chinese speech"),
        (_c(""), False, "empty"),
        (_c("   "), False, "blank"),
        (_c("Thank you.", nsp=0.7, lp=-1.2), False, "Whisper judged it silence"),
        (_c("Thank you.", conf=0.5), False, "stock phrase on weak words"),
        (_c("Thank you.", conf=0.95), True, "a clearly spoken thank you is speech"),
        (_c("谢谢观看", conf=0.3, words=1), False, "subtitle credit"),
        (_c("pay pay pay pay pay pay pay pay pay pay pay pay pay pay pay pay"), False, "loop"),
        (_c("Yes.", conf=0.2, words=1), False, "one weak word"),
        (_c("Yes.", conf=0.8, words=1), True, "one clear word"),
        (_c("Overdue amount", nsp=0.7, lp=-0.4), True, "high no-speech alone is not enough"),
    ],
)
def test_keep(candidate: Candidate, kept: bool, why: str) -> None:
    assert keep(candidate) is kept, why


def test_loops_compress_far_better_than_speech() -> None:
    assert compression_ratio("la " * 40) > 2.4
    assert compression_ratio("Your balance of 300 dollars was due on the fifth.") < 2.4

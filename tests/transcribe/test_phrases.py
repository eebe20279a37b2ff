"""The phrase primitives QA rules and carrier announcements share: folding, distances, search."""

from __future__ import annotations

import random

import pytest

from transcribe.phrases import (
    Occurrence,
    fold,
    has_han,
    levenshtein,
    locate,
    normalise,
    substring_distance,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("您 拨打的，号码。", "您拨打的号码"),
        ("The Number!", "thenumber"),
        ("ＡＢＣ１２３", "abc123"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_fold_keeps_spacing_and_punctuation() -> None:
    assert fold("ＡＰＰ Won’t, ２４") == "app won’t, 24"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("还款", True),
        ("APP还款", True),
        ("還", True),
        ("hello", False),
        ("ＡＢＣ", False),
        ("", False),
    ],
)
def test_has_han(text: str, expected: bool) -> None:
    assert has_han(text) is expected


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        ("空号", "是空号吗", 0),
        ("空号", "是空耗吗", 1),
        ("abc", "xxabxcxx", 1),
        ("abc", "", 3),
        ("", "anything", 0),
    ],
)
def test_substring_distance(phrase: str, text: str, expected: int) -> None:
    assert substring_distance(phrase, text) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("kitten", "sitting", 3), ("", "abc", 3), ("huan", "hai", 2), ("same", "same", 0)],
)
def test_levenshtein(a: str, b: str, expected: int) -> None:
    assert levenshtein(a, b) == expected == levenshtein(b, a)


def test_substring_distance_is_the_closest_stretch() -> None:
    """Against the definition: the fewest edits to any stretch of the text, empty included."""
    rng = random.Random(12)
    for _ in range(300):
        phrase = "".join(rng.choice("ab") for _ in range(rng.randint(1, 4)))
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        stretches = {text[i:j] for i in range(len(text) + 1) for j in range(i, len(text) + 1)}
        assert substring_distance(phrase, text) == min(levenshtein(phrase, s) for s in stretches)


def test_locate_says_where_and_prefers_the_shortest_match() -> None:
    assert locate("空号", "对不起是空号请查证") == Occurrence(0.0, 4, 6)
    assert locate("abc", "xxabxcxx") == Occurrence(1.0, 2, 4)  # "ab", the c left out
    assert locate("abc", "") is None
    unlike = locate("ab", "zz")
    assert unlike is not None and unlike.cost == 2  # nothing alike: the whole phrase away


def test_locate_over_tokens_with_a_substitution_cost_and_a_window() -> None:
    words = ["we", "will", "sue", "you", "we", "will", "soo", "you"]

    def spelling(a: str, b: str) -> float:
        return levenshtein(a, b) / max(len(a), len(b))

    assert locate(["will", "sue"], words, spelling) == Occurrence(0.0, 1, 3)
    found = locate(["will", "sue"], words, spelling, 4, 8)  # only the second half
    assert found is not None
    assert (found.start, found.end) == (5, 7) and found.cost == pytest.approx(2 / 3)

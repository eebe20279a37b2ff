"""A reviewed flag's sentence written into a pack's next version (pure: text in, text out)."""

from __future__ import annotations

import pytest

from qa_scoring.errors import QaError
from qa_scoring.learning import Addition, destination, next_version, with_examples
from qa_scoring.pack import parse_pack

PACK = """\
# a compliance lead's comment, kept
name: tiny
version: 3
language: en
consequences: {1: minor, 2: serious, 3: grave, 4: gravest}
categories: {threat: Threat, insult: Insult}
rules:
  - id: threat-hurt
    category: threat
    severity: 4
    phrases: [we will hurt you]
semantic:
  categories:
    threat:
      threshold: 0.9
      examples:
        - People who do not pay get hurt.   # the first one
        - |
          We know where you live.
    insult:
      threshold: 0.9
      examples: [You lazy deadbeat,
        you are useless,
      ]
"""


def test_sentences_land_where_they_go_and_the_rest_is_untouched() -> None:
    tricky = 'He said: "pay" # or else - [now], {ok}'
    out = with_examples(
        PACK,
        [
            Addition(1, tricky, "threat"),
            Addition(2, "What a fool you are", "insult"),
            Addition(3, "We can set up a payment plan.", "benign"),
        ],
        "4",
    )
    pack = parse_pack(out)
    assert pack.version == "4" and pack.semantic is not None
    threat = pack.semantic.categories["threat"].examples
    assert threat == ("People who do not pay get hurt.", "We know where you live.", tricky)
    assert pack.semantic.categories["insult"].examples == (
        "You lazy deadbeat",
        "you are useless",
        "What a fool you are",
    )
    assert pack.semantic.benign == ("We can set up a payment plan.",)
    assert "# a compliance lead's comment, kept" in out and "# the first one" in out
    assert PACK.count("\n") + 2 == out.count("\n")  # a line per block list, nothing rewritten


def test_an_example_set_the_pack_lacks_is_refused() -> None:
    with pytest.raises(QaError, match="no example set"):
        with_examples(PACK, [Addition(1, "You liar", "defamation")], "4")


@pytest.mark.parametrize(
    ("version", "taken", "expected"),
    [("3", set(), "4"), ("1.9", set(), "1.10"), ("3", {"4", "5"}, "6"), ("zh-a", set(), "zh-a.1")],
)
def test_next_version(version: str, taken: set[str], expected: str) -> None:
    assert next_version(version, taken) == expected


@pytest.mark.parametrize(
    ("state", "category", "wanted", "goes", "refusal"),
    [
        ("confirmed", "threat", "threat", "threat", None),
        ("upheld", "threat", "threat", "threat", None),
        ("dismissed", "threat", "benign", "benign", None),
        ("overturned", "threat", "benign", "benign", None),
        ("open", "threat", "threat", None, "only a confirmed"),
        ("appealed", "threat", "benign", None, "only a dismissed"),
        ("confirmed", "threat", "insult", None, "confirmed as threat"),
        ("dismissed", "threat", "threat", None, "only a confirmed"),
    ],
)
def test_only_a_verdict_is_learnt_from(
    state: str, category: str, wanted: str, goes: str | None, refusal: str | None
) -> None:
    if refusal is None:
        assert destination(state, category, wanted, 7) == goes
    else:
        with pytest.raises(QaError, match=refusal):
            destination(state, category, wanted, 7)

"""The meaning-based decision on hand-made vectors: probability, lawful neighbours, context.

No model here: the vectors are chosen so each case says which rule decides,
and the real model is exercised in test_qa_semantic_model.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from qa_scoring.pack import load_pack
from qa_scoring.rules import CallText, Flag, Utterance
from qa_scoring.semantic import ExampleBank, calibrate, judge, semantic_flags, unit

PACK = load_pack("en-collections")


def v(*xs: float) -> np.ndarray:
    return unit(np.array(xs, dtype=np.float32))


BANK = ExampleBank(
    texts={
        "threat": ("We will hurt you.", "If you don't pay, we will hurt you."),
        "impersonation": ("I am calling from the police.",),
    },
    vectors={
        "threat": np.stack([v(1, 0, 0, 0), v(0.9, 0.1, 0, 0)]),
        "impersonation": np.stack([v(0, 1, 0, 0)]),
    },
    thresholds={"threat": 0.5, "impersonation": 0.5},
    benign_texts=("The bank may take legal action under the contract.",),
    benign=np.stack([v(0, 0, 1, 0)]),
)


def _flags(
    text: str, vector: np.ndarray, speaker: str = "agent", rule_flags: tuple[Flag, ...] = ()
) -> list[Flag]:
    call = CallText([Utterance(0.0, 4.0, speaker, text, 0.9)], "en")
    return semantic_flags(call, {0: vector}, BANK, PACK, rule_flags)


@pytest.mark.parametrize(
    ("text", "vector", "speaker", "expected"),
    [
        ("Folks who ignore us get hurt.", v(1, 0.1, 0, 0), "agent", ["threat"]),
        ("I work with the district court.", v(0.1, 1, 0, 0), "agent", ["impersonation"]),
        # near every category a little: below the category's threshold
        ("Please call us back.", v(1, 1, 1, 1), "agent", []),
        # nearer to a lawful sentence than to the category: the lawful class takes it
        ("We may go to court.", v(0.95, 0, 1, 0), "agent", []),
        # more negators than its nearest example: a denial
        ("I am not calling from the police.", v(0, 1, 0, 0), "agent", []),
        # read back: the debtor's words
        ("You said we would hurt you.", v(1, 0, 0, 0), "agent", []),
        # the debtor's channel never counts
        ("People like you get hurt.", v(1, 0, 0, 0), "debtor", []),
    ],
)
def test_decision(text: str, vector: np.ndarray, speaker: str, expected: list[str]) -> None:
    assert [f.category for f in _flags(text, vector, speaker)] == expected


def test_flag_says_why_and_how_sure() -> None:
    (flag,) = _flags("Folks who ignore us get hurt.", v(1, 0.02, 0, 0))
    assert flag.source == "semantic"
    assert flag.rule == "semantic-threat"
    assert flag.score is not None and 0.5 <= flag.score <= 1.0  # a probability
    assert flag.nearest[0][0] == "We will hurt you."
    assert flag.confidence == pytest.approx(0.9)  # the segment's ASR confidence
    assert flag.needs_listening  # a reviewer confirms it before it counts
    assert flag.severity == max(r.severity for r in PACK.rules if r.category == "threat")
    shown = flag.to_json()
    assert shown["nearest"][0]["example"] == "We will hurt you."
    assert shown["score"] == pytest.approx(flag.score, abs=1e-4)


def test_a_rule_flag_on_the_segment_wins() -> None:
    ruled = _flags("Folks who ignore us get hurt.", v(1, 0.1, 0, 0))[0]
    again = _flags("Folks who ignore us get hurt.", v(1, 0.1, 0, 0), rule_flags=(ruled,))
    assert again == []


def test_a_reviewers_example_changes_the_next_decision() -> None:
    """The classifier is refitted from the examples whenever a bank is made: no training step."""
    said = v(0.2, 0.1, 0.3, 1)
    assert judge(said, BANK)[0].score < 0.5
    learnt = ExampleBank(
        texts={**BANK.texts, "threat": (*BANK.texts["threat"], "Think about your family.")},
        vectors={**BANK.vectors, "threat": np.vstack([BANK.vectors["threat"], v(0.2, 0, 0.2, 1)])},
        thresholds=BANK.thresholds,
        benign_texts=BANK.benign_texts,
        benign=BANK.benign,
    )
    top = judge(said, learnt)[0]
    assert (top.category, top.above) == ("threat", True)
    assert top.nearest[0][0] == "Think about your family."
    # and a dismissed flag's sentence, kept as benign, stops the flag it raised
    assert BANK.benign is not None
    dismissed = ExampleBank(
        texts=learnt.texts,
        vectors=learnt.vectors,
        thresholds=learnt.thresholds,
        benign_texts=(*BANK.benign_texts, "Think about your options."),
        benign=np.vstack([BANK.benign, v(0.2, 0.1, 0.3, 1)]),
    )
    assert not judge(said, dismissed)[0].above


def test_nearest_first() -> None:
    judged = judge(v(0.2, 1, 0, 0), BANK)
    assert [j.category for j in judged] == ["impersonation", "threat"]


@pytest.mark.parametrize(
    ("positives", "negatives", "expected"),
    [
        ([0.95, 0.93], [0.80, 0.85], 0.93),  # separable: the highest threshold that keeps all
        ([0.95, 0.90], [0.92, 0.91], 0.95),  # F1 ties: the higher, fewer false flags
        ([None, 0.91], [0.85, None], 0.91),  # never-flaggable items count as misses
        ([], [0.9], 1.0),  # no positive: flag nothing
    ],
)
def test_calibrate(
    positives: list[float | None], negatives: list[float | None], expected: float
) -> None:
    assert calibrate(positives, negatives) == pytest.approx(expected)


def test_pack_refuses_examples_for_an_undeclared_category() -> None:
    from qa_scoring.errors import PackError
    from qa_scoring.pack import PACKS_DIR, parse_pack

    text = (PACKS_DIR / "en-collections.yaml").read_text(encoding="utf-8")
    broken = text.replace("\n    abuse:\n      threshold:", "\n    rudeness:\n      threshold:")
    with pytest.raises(PackError, match=r"line \d+: semantic category 'rudeness' is not declared"):
        parse_pack(broken, "en-collections.yaml")

"""Chinese as Whisper writes it: traditional characters, numerals either way, misheard words.

The same call must score the same whichever form the ASR chose, a debtor's 對
is the 对 that confirms who is on the line, and a flag that turns on a word the
ASR was unsure of waits for a person before it costs the agent anything.
"""

from __future__ import annotations

from typing import Any

import pytest

from qa_scoring.check import check_transcript
from qa_scoring.pack import parse_pack
from qa_scoring.review import CONFIRMED, DISMISSED, OPEN, ReviewedFlag, reviewed_score
from qa_scoring.score import FULL_SCORE, MISSING_WEIGHT, WEIGHTS
from tests.qa_scoring.test_qa_rules import AGENT, CN_OPENING, DEBTOR, Line, transcript, words

# The same sentence as Whisper wrote it in simplified and in traditional characters.
SAME_WORDS: list[tuple[str, str, str]] = [
    ("今天不还，明天就到你家去找你。", "今天不還，明天就到你家去找你。", "threat-violence"),
    ("我们是法院的，你等着吧。", "我們是法院的，你等著吧。", "impersonate-authority"),
    ("你这就是诈骗。", "你這就是詐騙。", "defamation-label"),
    ("你把钱转到我个人账户上。", "你把錢轉到我個人賬戶上。", "personal-collection"),
    ("我保证给你减免全部利息。", "我保證給你減免全部利息。", "false-promise"),
]


def _rules(lines: list[Line]) -> list[str]:
    return [f.rule for f in check_transcript(transcript(*lines), "cn-collections").flags]


@pytest.mark.parametrize(("simplified", "traditional", "rule"), SAME_WORDS)
def test_traditional_transcript_is_flagged_like_the_simplified_one(
    simplified: str, traditional: str, rule: str
) -> None:
    plain = _rules([*CN_OPENING, (AGENT, simplified)])
    assert rule in plain
    assert _rules([*CN_OPENING, (AGENT, traditional)]) == plain


def test_the_flag_quotes_and_times_the_words_whisper_wrote() -> None:
    text = "今天不還，明天就到你家去找你"
    pieces = [("今天", 0.9), ("不還", 0.9), ("，", 0.9), ("明天", 0.9), ("就", 0.9)]
    pieces += [("到", 0.9), ("你家", 0.9), ("去", 0.9), ("找你", 0.9)]
    data = transcript(*CN_OPENING)
    data["segments"].append(
        {
            "start": 20.0,
            "end": 24.5,
            "speaker": AGENT,
            "text": text,
            "confidence": 0.9,
            "words": words(text, 20.0, pieces),
        }
    )
    [flag] = check_transcript(data, "cn-collections").flags
    assert flag.rule == "threat-violence"
    assert flag.text == text  # the segment as stored, not a converted copy
    assert flag.heard.startswith("不還")
    assert flag.start == 20.5  # 不還 is the second word, half a second in
    assert not flag.needs_listening


def test_negation_in_traditional_characters_still_negates() -> None:
    assert "impersonate-authority" not in _rules([*CN_OPENING, (AGENT, "我們不是法院的。")])


@pytest.mark.parametrize(
    ("lines", "missing", "why"),
    [
        (
            [
                (AGENT, "您好，請問是王建國先生嗎？"),
                (DEBTOR, "對，是我。"),
                (AGENT, "我是恆信資產管理公司的催收專員劉洋。"),
                (AGENT, "您的信用卡已經逾期四十五天，欠款八千六百五十元。"),
                (AGENT, "您可以通過手機銀行還款。"),
            ],
            [],
            "every required statement, in traditional characters and Chinese numerals",
        ),
        (
            [*CN_OPENING, (AGENT, "您的信用卡千款已经有5200元了。"), (AGENT, "可以用手机银行还。")],
            [],
            "欠款 misheard as 千款 still states the overdue facts",
        ),
        (
            [*CN_OPENING, (AGENT, "您可以通過手機銀行還款。")],
            ["overdue-facts"],
            "what was not said is still missing",
        ),
    ],
)
def test_required_wording_as_whisper_writes_it(
    lines: list[Line], missing: list[str], why: str
) -> None:
    result = check_transcript(transcript(*lines), "cn-collections")
    assert [m.rule for m in result.missing] == missing, why


@pytest.mark.parametrize(
    ("answer", "flagged", "why"),
    [
        ("對，是我。", False, "traditional 對 confirms"),
        ("對。", False, "a bare 對"),
        ("队。", False, "对 misheard as its homophone 队"),
        ("是我本人。", False, "simplified, as before"),
        ("不是，我是他老婆。", True, "a denial is still a denial"),
        ("你哪位？", True, "no answer to the question"),
    ],
)
def test_right_party_confirmation_as_whisper_writes_it(
    answer: str, flagged: bool, why: str
) -> None:
    lines: list[Line] = [
        (AGENT, "請問是王建國先生嗎？"),
        (DEBTOR, answer),
        (AGENT, "您的信用卡逾期了。"),
    ]
    assert ("rpv-debt-before-verification" in _rules(lines)) is flagged, why


NUMBER_PACK = """
name: numbers
version: 1
language: zh
consequences: {1: 一级, 2: 二级, 3: 三级, 4: 四级}
rules:
  - id: promise-discount
    category: false-promise
    severity: 2
    phrases: [只要还五千就结清]
"""


@pytest.mark.parametrize(
    "said", ["只要还五千就结清", "只要还5000就结清", "只要還５０００就結清", "只要环五千就结清"]
)
def test_numbers_written_either_way_meet_the_same_phrase(said: str) -> None:
    pack = parse_pack(NUMBER_PACK)
    result = check_transcript(transcript((AGENT, said)), pack)
    assert [f.rule for f in result.flags] == ["promise-discount"]


def _one_weak_word(probability: float) -> dict[str, Any]:
    """A banned phrase of five words, one of them heard at `probability`, the rest at 0.95."""
    text = "再不还就去你单卫闹"
    pieces = [("再", 0.95), ("不还", 0.95), ("就", 0.95), ("去", 0.95), ("你", 0.95)]
    pieces += [("单卫", probability), ("闹", 0.95)]
    data = transcript(*CN_OPENING)
    data["segments"].append(
        {
            "start": 30.0,
            "end": 34.0,
            "speaker": AGENT,
            "text": text,
            "confidence": 0.9,
            "words": words(text, 30.0, pieces),
        }
    )
    return data


def test_one_weak_word_is_enough_to_listen_first() -> None:
    result = check_transcript(_one_weak_word(0.3), "cn-collections")
    [flag] = result.flags
    assert flag.confidence > 0.6  # the mean alone would have passed it
    assert flag.needs_listening
    assert flag.to_json()["listen_first"] is True
    assert flag.to_json()["weakest_word"] == 0.3
    unflagged = FULL_SCORE - MISSING_WEIGHT * len(result.missing)
    assert result.score == unflagged  # not counted by the machine
    sure = check_transcript(_one_weak_word(0.9), "cn-collections")
    assert not sure.flags[0].needs_listening
    assert sure.score == unflagged - WEIGHTS[4]


@pytest.mark.parametrize(
    ("state", "counts"),
    [(OPEN, False), (CONFIRMED, True), (DISMISSED, False)],
)
def test_listen_first_counts_only_once_a_reviewer_confirms_it(state: str, counts: bool) -> None:
    [flag] = check_transcript(_one_weak_word(0.3), "cn-collections").flags
    reviewed = ReviewedFlag(flag.rule, flag.severity, flag.needs_listening, state)
    expected = FULL_SCORE - WEIGHTS[flag.severity] if counts else FULL_SCORE
    assert reviewed_score([reviewed], missing=0) == expected

"""Normalisation and matching: ASR errors still match, context keeps lawful sentences unflagged."""

from __future__ import annotations

import pytest

from qa_scoring.matching import (
    TextIndex,
    compile_phrase,
    contains,
    is_negated,
    is_reported,
    number_words,
    tokenize,
)


def find(phrase: str, text: str, language: str, tolerance: float = 0.0) -> bool:
    index = TextIndex([tokenize(text, language)])
    return bool(index.find(compile_phrase(phrase, language), tolerance))


@pytest.mark.parametrize(
    ("text", "language", "tokens"),
    [
        ("还款", "zh", ["hai", "kuan"]),
        ("您好", "zh", ["ni", "hao"]),  # the polite 您 is the 你 of the phrases
        ("還款", "zh", ["hai", "kuan"]),  # traditional characters read the same
        ("APP还款3000元", "zh", ["app", "hai", "kuan", "3000", "yuan"]),
        ("We won't SUE you!", "en", ["we", "will", "not", "sue", "you", "|"]),
        ("I'm sure it's fine", "en", ["i", "am", "sure", "it", "is", "fine"]),
        (
            "You owe 2,500 dollars",
            "en",
            ["you", "owe", "two", "thousand", "five", "hundred", "dollars"],
        ),
        ("within 24 hours", "en", ["within", "twenty", "four", "hours"]),
        ("ＡＰＰ", "en", ["app"]),  # full-width letters from a Chinese keyboard
    ],
)
def test_tokens(text: str, language: str, tokens: list[str]) -> None:
    assert ["".join(sorted(k)) for k in tokenize(text, language).keys] == tokens


@pytest.mark.parametrize(
    ("digits", "words"),
    [
        ("0", "zero"),
        ("15", "fifteen"),
        ("240", "two hundred forty"),
        ("1,240", "one thousand two hundred forty"),
        ("3000000", "three million"),
        ("12.5", "twelve point five"),
    ],
)
def test_number_words(digits: str, words: str) -> None:
    assert " ".join(number_words(digits)) == words


@pytest.mark.parametrize(
    ("phrase", "text", "matches", "why"),
    [
        ("还款", "请尽快环款", True, "homophone: 环款 heard for 还款"),
        ("还款", "请尽快还款", True, "the right characters"),
        ("去你单位闹", "不还钱就去你单卫闹", True, "单位 heard as 单卫"),
        ("高利贷", "去借高利带", True, "贷 heard as 带"),
        ("去你单位闹", "我们会去您单位闹", True, "您 and 你"),
        ("已经逾期", "您的信用卡已经预期六十天", True, "逾期 heard as 预期"),
        ("他欠了", "您已经拖欠了三个月", False, "他 is rarely read tuo: 拖欠 is not 他欠"),
        ("未还", "喂，还在吗", False, "no phrase spans clause punctuation"),
        ("还款", "还有款项", False, "characters must be adjacent"),
    ],
)
def test_chinese_pinyin_matching(phrase: str, text: str, matches: bool, why: str) -> None:
    assert find(phrase, text, "zh") is matches, why


@pytest.mark.parametrize(
    ("phrase", "text", "tolerance", "matches", "why"),
    [
        ("we will have you arrested", "We'll have you ARRESTED.", 0.0, True, "contraction, case"),
        ("send people to your house", "we will sent people to your house", 0.15, True, "ASR slip"),
        (
            "send people to your house",
            "we will sent people to your house",
            0.0,
            False,
            "exact only",
        ),
        ("i am from the police", "I am not from the police", 0.2, True, "found; negation decides"),
        (
            "i am with the irs",
            "I'm with the collections department",
            0.2,
            False,
            "key word differs",
        ),
        ("we will sue you", "we will see you tomorrow", 0.0, False, "one word is a new sentence"),
        ("within 24 hours", "within twenty-four hours", 0.0, True, "digits and words"),
    ],
)
def test_english_matching(
    phrase: str, text: str, tolerance: float, matches: bool, why: str
) -> None:
    assert find(phrase, text, "en", tolerance) is matches, why


def test_hit_points_at_the_words() -> None:
    tokens = tokenize("您好，不还钱就去你单位闹。", "zh")
    [hit] = TextIndex([tokens]).find(compile_phrase("去你单位闹", "zh"))
    start, end = hit.char_span(tokens)
    assert tokens.text[start:end] == "去你单位闹"


@pytest.mark.parametrize(
    ("text", "phrase", "language", "tolerance", "negated"),
    [
        ("我们不是公安", "是公安", "zh", 0.0, True),
        ("我们不是公安", "我们是公安", "zh", 0.3, True),
        ("我们是公安", "我们是公安", "zh", 0.0, False),
        ("不还钱就去你单位闹", "去你单位闹", "zh", 0.0, False),
        ("你不还我们去你单位闹", "去你单位闹", "zh", 0.0, False),
        ("我们绝对不会去你单位闹", "去你单位闹", "zh", 0.0, True),
        ("我们从来没有说过要去你单位闹", "去你单位闹", "zh", 0.0, True),
        ("你是不是脑子有病", "脑子有病", "zh", 0.0, False),
        ("实在不行去借网贷", "借网贷", "zh", 0.0, False),
        ("我不能保证减免全部利息", "保证减免全部利息", "zh", 0.0, True),
        ("你爱还不还", "你爱还不还", "zh", 0.0, False),
        ("We will never sue you", "sue you", "en", 0.0, True),
        ("We will sue you", "sue you", "en", 0.0, False),
        ("If you don't pay we will sue you", "we will sue you", "en", 0.0, False),
        ("If you don't pay, we will sue you", "sue you", "en", 0.0, False),
        ("We won't have you arrested", "have you arrested", "en", 0.0, True),
        ("I am not from the police", "i am from the police", "en", 0.2, True),
    ],
)
def test_negation(text: str, phrase: str, language: str, tolerance: float, negated: bool) -> None:
    tokens = tokenize(text, language)
    compiled = compile_phrase(phrase, language)
    [hit] = TextIndex([tokens]).find(compiled, tolerance)
    assert is_negated(tokens, hit, compiled) is negated


@pytest.mark.parametrize(
    ("text", "phrase", "language", "reported"),
    [
        ("您刚才说我们要去您单位闹，我们不会的", "去你单位闹", "zh", True),
        ("你是说我们要去你单位闹？", "去你单位闹", "zh", True),
        ("我跟你说我们就去你单位闹", "去你单位闹", "zh", False),
        ("公司规定不能说“不还钱就去你单位闹”这种话", "去你单位闹", "zh", True),
        ("不还钱就去你单位闹", "去你单位闹", "zh", False),
        ("You said we would have you arrested", "have you arrested", "en", True),
        ('Never say "we will have you arrested" on a call', "have you arrested", "en", True),
        ("We will have you arrested", "have you arrested", "en", False),
    ],
)
def test_reported_speech(text: str, phrase: str, language: str, reported: bool) -> None:
    tokens = tokenize(text, language)
    [hit] = TextIndex([tokens]).find(compile_phrase(phrase, language))
    assert is_reported(tokens, hit, language) is reported


def test_contains_for_exceptions() -> None:
    tokens = tokenize("我们是受浦发银行委托的机构", "zh")
    assert contains(tokens, compile_phrase("委托", "zh"))
    assert not contains(tokens, compile_phrase("律师", "zh"))


def test_phrase_without_words_is_refused() -> None:
    with pytest.raises(ValueError, match="no words"):
        compile_phrase("？！", "zh")


def test_find_limits_to_documents() -> None:
    index = TextIndex([tokenize("去你单位闹", "zh"), tokenize("去你单位闹", "zh")])
    phrase = compile_phrase("去你单位闹", "zh")
    assert [h.doc for h in index.find(phrase)] == [0, 1]
    assert [h.doc for h in index.find(phrase, docs={1})] == [1]
    assert [h.doc for h in index.find(phrase, 0.2, docs=[0])] == [0]

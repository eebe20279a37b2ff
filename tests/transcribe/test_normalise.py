"""Chinese ASR text in the form rules are written in, and the way back to what the ASR wrote."""

from __future__ import annotations

import re

import pytest

from transcribe.normalise import normalise_pattern, normalise_text


@pytest.mark.parametrize(
    ("heard", "expected", "why"),
    [
        ("今天不還就到你家", "今天不还就到你家", "traditional 還 as simplified"),
        ("這張卡已經逾期", "这张卡已经逾期", "這張, 已經"),
        ("對，是我。", "对，是我。", "the debtor's 對 is 对"),
        ("沒有還款", "没有还款", "a traditional negator is still a negator"),
        ("乾淨", "干净", "phrase by phrase: 乾淨 is 干净 ..."),
        ("乾隆", "乾隆", "... but 乾隆 keeps its 乾"),
        ("逾期六十二天", "逾期62天", "a value in Chinese numerals"),
        ("逾期62天", "逾期62天", "already digits"),
        ("欠款两千三百零五元", "欠款2305元", "两 and 零 inside a value"),
        ("一万五千块", "15000块", "万 and 千"),
        ("电话一三八零零", "电话13800", "digits read one by one"),
        ("三天内", "3天内", "a lone numeral before a unit of time"),
        ("两块钱", "2块钱", "two kuai"),
        ("号码１３８", "号码138", "full-width digits"),
        ("ＡＢＣ　公司", "ABC 公司", "full-width letters and the ideographic space"),
        ("一定要还", "一定要还", "一定 is a word"),
        ("十分抱歉", "十分抱歉", "十分 is 'very'"),
        ("万一你不还", "万一你不还", "万一 is 'in case'"),
        ("千万别这样", "千万别这样", "千万 is 'by all means'"),
        ("七八天", "七八天", "seven or eight days, not 78"),
        ("他有一笔欠款", "他有一笔欠款", "一笔 is 'a', not a number to compare"),
        ("你好？请问！", "你好？请问！", "Chinese punctuation stays: rules list it"),
        ("Hello, WORLD 24", "Hello, WORLD 24", "English is left to the English matcher"),
    ],
)
def test_normalised_form(heard: str, expected: str, why: str) -> None:
    assert normalise_text(heard).text == expected, why
    assert normalise_text(expected).text == expected, f"idempotent: {why}"


@pytest.mark.parametrize(
    ("heard", "normal_span", "original"),
    [
        ("逾期六十二天了", (2, 4), "六十二"),  # "62" came from three characters
        ("今天不還就到你家", (2, 4), "不還"),
        ("您的欠款５２００元", (4, 8), "５２００"),
        ("已經逾期六十二天，請還款", (9, 11), "還款"),
    ],
)
def test_a_match_in_the_normalised_text_points_at_the_original(
    heard: str, normal_span: tuple[int, int], original: str
) -> None:
    normal = normalise_text(heard)
    start, end = normal.original_span(*normal_span)
    assert heard[start:end] == original


def test_patterns_keep_their_syntax_and_numerals() -> None:
    pattern = r"(不還|再拖)[^。？?]{0,12}(到|去)你(們)?(單位|家)[？?]"
    normal = normalise_pattern(pattern)
    assert normal == r"(不还|再拖)[^。？?]{0,12}(到|去)你(们)?(单位|家)[？?]"
    assert re.search(normal, normalise_text("你要是不還，明天就到你們單位？").text)
    # numerals in a pattern are its character classes, not quantities
    classes = "[一二三四五六七八九十百千万两]+"
    assert normalise_pattern(classes) == classes

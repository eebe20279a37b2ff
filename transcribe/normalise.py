"""Chinese transcript text in the one form rules are written in, with a way back to the original.

Whisper's Chinese is not the Chinese a compliance lead types. The multilingual
models write traditional characters (還款, 這張, the debtor's 對) for Mandarin
speech as often as simplified ones, numbers either as 六十二 or as 62, and
now and then full-width ＡＢＣ and １３８. A rule written 还款 or 逾期62天 must
meet all of them, so both sides pass through `normalise_text` before any rule
looks at them:

- traditional to simplified with OpenCC's `t2s` configuration. The `opencc`
  package on PyPI is BYVoid's own OpenCC (the C++ library and its
  dictionaries, Apache-2.0, manylinux wheels, maintained since 2010), not one
  of the pure-Python re-implementations whose dictionaries drift. It converts
  phrase by phrase (乾隆 stays, 乾淨 becomes 干净), so it is applied to whole
  runs of Chinese characters;
- Chinese numerals that name a quantity to Arabic digits (cn2an reads the
  value): 六十二 and 两千三百零五 as values, 一三八零 read digit by digit,
  and a lone 一 to 十 or 两 only before a unit of time or money (三天, 两块).
  Everything else stays as it was written: 一定, 十分抱歉, 万一, 千万别 and
  一个 are words, not numbers, and cn2an's own `transform` would turn them into
  1定 and 10分抱歉. Digits are the one form because that is what people type
  in a rule and what Whisper most often writes;
- full-width letters and digits and the ideographic space to their ASCII
  forms (NFKC, for those code points only). Full-width punctuation (，？！)
  is left alone: the packs' patterns and the tokenizer list both forms, and
  folding ？ into ? inside a pattern would turn a literal into a quantifier.

A rule's `patterns` are regular expressions, so they get only the first and
the last step (`normalise_pattern`): digits in a pattern would break its
character classes ([一二三…]), and a pattern meant for a number writes
[0-9]+ anyway.

Every character of the normalised text remembers the stretch of the original
it came from (`Normalised.original_span`), so a flag found in 还款 still points
at the 還款 the transcript holds, its words and their times.

No I/O: the pure QA rules use it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from transcribe.phrases import HAN

_HAN_RUN = re.compile(f"[{HAN}]+")

# A full-width letter or digit (U+FF10-FF19, FF21-FF3A, FF41-FF5A) or U+3000.
_WIDE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000]")

_DIGITS = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "三": "3", "四": "4"}
_DIGITS |= {"五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_UNITS = "十百千万亿"
_NUMERAL_RUN = re.compile(f"[{''.join(_DIGITS)}两{_UNITS}]+")
# What a lone numeral counts when it is a quantity: days, money, age, instalments.
_QUANTITY_AFTER = ("天", "日", "号", "元", "块", "岁", "年", "期", "个月", "小时", "分钟")


@dataclass(frozen=True, slots=True)
class Normalised:
    """Normalised `text`; `origin[i]` is the span of the original that text[i] came from."""

    text: str
    source: str
    origin: tuple[tuple[int, int], ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The stretch of the original text that text[start:end] came from."""
        if not self.origin:
            return 0, len(self.source)
        if end <= start:
            at = self.origin[start][0] if start < len(self.origin) else len(self.source)
            return at, at
        return self.origin[start][0], self.origin[end - 1][1]


@cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _cn2an(numeral: str) -> int | None:
    import cn2an

    try:
        value = cn2an.cn2an(numeral, "normal")
    except (ValueError, KeyError, TypeError):  # not a well-formed numeral: leave it
        return None
    return int(value) if float(value).is_integer() else None


def _numeral(run: str, after: str) -> str | None:
    """The digits for a run of numeral characters, or None where it is a word, not a number."""
    if all(c in _DIGITS for c in run):
        if len(run) >= 3:  # a phone, card or staff number read out: 一三八, 二零八七
            return "".join(_DIGITS[c] for c in run)
        if len(run) == 1 and after.startswith(_QUANTITY_AFTER):
            return _DIGITS[run]
        return None  # 七八天 and 三四个 are "seven or eight", not 78; 一定 is a word
    if run[0] not in _DIGITS and run[0] not in "两十":
        return None  # 千万别, 万一, 百分之百: words that start with a unit
    if len(run) == 1 and not after.startswith(_QUANTITY_AFTER):
        return None  # 十分抱歉, 两个人
    value = _cn2an(run)
    return None if value is None else str(value)


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.origin: list[tuple[int, int]] = []

    def add(self, text: str, origin: list[tuple[int, int]]) -> None:
        self.parts.append(text)
        self.origin.extend(origin)


def _width(text: str) -> str:
    """Full-width letters, digits and spaces as ASCII; one character for one, so offsets hold."""
    return _WIDE.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def _simplified(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Traditional runs as simplified; each output character's span in `text`."""
    out: list[str] = []
    origin: list[tuple[int, int]] = []
    cursor = 0
    for m in _HAN_RUN.finditer(text):
        out.append(text[cursor : m.start()])
        origin.extend((i, i + 1) for i in range(cursor, m.start()))
        converted = _t2s().convert(m.group())
        out.append(converted)
        if len(converted) == len(m.group()):  # the rule: one character for one
            origin.extend((i, i + 1) for i in range(m.start(), m.end()))
        else:  # a phrase of another length: each character stands for the whole run
            origin.extend([m.span()] * len(converted))
        cursor = m.end()
    out.append(text[cursor:])
    origin.extend((i, i + 1) for i in range(cursor, len(text)))
    return "".join(out), origin


@lru_cache(maxsize=50_000)
def normalise_text(text: str) -> Normalised:
    """`text` with traditional characters, Chinese numerals and full-width forms in one form.

    Idempotent, and applied alike to a rule's phrases and to the transcript, so
    the two meet whatever form either was written in.
    """
    simplified, origin = _simplified(_width(text))
    built = _Builder()
    cursor = 0
    for m in _NUMERAL_RUN.finditer(simplified):
        digits = _numeral(m.group(), simplified[m.end() : m.end() + 2])
        if digits is None:
            continue
        built.add(simplified[cursor : m.start()], origin[cursor : m.start()])
        span = (origin[m.start()][0], origin[m.end() - 1][1])
        built.add(digits, [span] * len(digits))
        cursor = m.end()
    built.add(simplified[cursor:], origin[cursor:])
    return Normalised("".join(built.parts), text, tuple(built.origin))


@lru_cache(maxsize=4096)
def normalise_pattern(pattern: str) -> str:
    """A rule's regular expression in the transcript's form: simplified, ASCII letters and digits.

    Numerals are left as written (see the module's docstring), and nothing that
    regular-expression syntax reads is touched: only Chinese characters and
    full-width letters and digits change.
    """
    return _simplified(_width(pattern))[0]

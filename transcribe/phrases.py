"""Comparing what a transcript says with wording a person wrote down: the shared primitives.

Two readers hold ASR output against a phrase list. QA rules look for
"我们会去你单位" or "we will sue you" in call transcripts (qa_scoring.matching);
the dialer looks for "您拨打的号码是空号" in a carrier's transcribed early media
(dialer.number_status). Both need the same few things, kept here once:

- `fold`: the Unicode form text is compared in. ASR writes full-width ＡＢＣ and
  ５ where a person types ABC and 5, and either case; NFKC and casefold undo both;
- `HAN` and `has_han`: which characters are Chinese, each one a whole syllable,
  so both readers count them differently from letters;
- `normalise`: only the letters and digits of folded text, for comparing
  character by character where spacing and punctuation mean nothing;
- `levenshtein`: edits between two strings;
- `locate` and `substring_distance`: the fewest edits that turn a phrase into
  some stretch of a longer text (Sellers' algorithm: the text before and after
  the match is free), over characters or over any tokens with a substitution
  cost of the caller's choosing.

How close is close enough is each caller's own judgement, not this module's:
carrier announcements allow a fixed number of edits per phrase length
(number_status.edit_budget), QA rules a tolerance per rule over pinyin tokens,
with verbatim and content-word checks on top (qa_scoring.matching).

Standard library only: the pure decisions that use it (number status, QA
rules) must not pull in Whisper or the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

T = TypeVar("T")

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Chinese characters (CJK unified ideographs, extension A, compatibility), for a regex class."""

_HAN_CHAR = re.compile(f"[{HAN}]")


def has_han(text: str) -> bool:
    """Whether `text` holds a Chinese character."""
    return _HAN_CHAR.search(text) is not None


def fold(text: str) -> str:
    """NFKC (full-width letters and digits to plain ones) and casefold: the compared form."""
    return unicodedata.normalize("NFKC", text).casefold()


def normalise(text: str) -> str:
    """Only the letters and digits of folded `text`: spaces and punctuation dropped.

    Chinese ASR inserts spaces at random and punctuates as it likes, and
    neither changes what was said.
    """
    return "".join(ch for ch in fold(text) if unicodedata.category(ch)[0] in "LN")


def levenshtein(a: str, b: str) -> int:
    """Fewest single-character insertions, deletions and substitutions from `a` to `b`."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class Occurrence(NamedTuple):
    """Where a phrase was found: text[start:end], at `cost` edits."""

    cost: float
    start: int
    end: int


def _unequal(a: object, b: object) -> float:
    return 0.0 if a == b else 1.0


def locate(
    phrase: Sequence[T],
    text: Sequence[T],
    substitution: Callable[[T, T], float] = _unequal,
    start: int = 0,
    end: int | None = None,
) -> Occurrence | None:
    """The best approximate occurrence of `phrase` in text[start:end], or None for none.

    Semi-global edit distance: text before and after the match costs nothing,
    a phrase item missing from the text or an extra text item costs 1, and
    putting one item for another costs `substitution` (0 for the same, up to
    1; by default exact equality). Among equally cheap matches the shortest
    wins, then the earliest. None when the cheapest "match" takes no text at
    all (its cost would be the phrase's length).
    """
    stop = len(text) if end is None else end
    n = stop - start
    if n <= 0:
        return None
    previous = [0.0] * (n + 1)
    previous_start = list(range(n + 1))
    for i, item in enumerate(phrase, 1):
        current = [float(i)] + [0.0] * n
        current_start = [0] * (n + 1)
        for j in range(1, n + 1):
            best = previous[j - 1] + substitution(item, text[start + j - 1])
            begin = previous_start[j - 1]
            if previous[j] + 1 < best:  # the text lacks this phrase item
                best, begin = previous[j] + 1, previous_start[j]
            if current[j - 1] + 1 < best:  # the text has an extra item
                best, begin = current[j - 1] + 1, current_start[j - 1]
            current[j], current_start[j] = best, begin
        previous, previous_start = current, current_start
    last = min(range(1, n + 1), key=lambda j: (previous[j], j - previous_start[j]))
    if previous_start[last] >= last:
        return None
    return Occurrence(previous[last], start + previous_start[last], start + last)


def substring_distance(phrase: str, text: str) -> int:
    """Fewest edits that turn `phrase` into some stretch of `text`, over characters.

    The announcement is wrapped in other words ("对不起，您拨打的号码是空号，
    请查证后再拨"): only the stretch that matches best counts.
    """
    if not phrase:
        return 0
    found = locate(phrase, text)
    # No stretch at all (an empty text) is every phrase character missing.
    return len(phrase) if found is None else int(found.cost)

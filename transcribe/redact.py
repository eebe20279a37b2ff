"""Masking sensitive numbers heard in a call before a transcript is stored, and in what people
read afterwards: log lines and search results.

Card numbers, national ID numbers, phone numbers and bank accounts said
aloud end up in transcripts as digits, as full-width digits, or as Chinese
numerals (一三八, 幺 for one, 两 for two, 〇 and 零 for zero), often mixed
with Arabic digits and broken into groups by spaces or commas. PCI DSS
forbids storing a card number in the clear, and the rest is personal data;
nothing downstream (storage, search index, snippets, QA) needs the digits,
so they are masked once, here, keeping the last four as payment systems do.
The unmasked text is not kept anywhere.

Two strengths, because the texts differ:

- `mask_numbers` (transcripts, QA flags, search snippets): every run of six
  or more digits. Speech holds no ids or hashes, and ASR mishears digits,
  so a pattern that needed a valid card or ID checksum would let a misheard
  number through.
- `mask_personal` (log lines, audited queries): text full of ids, ports,
  sizes and dates, so only what has the shape of personal data: a run of
  eleven or more digits standing alone (mobile numbers 1[3-9]x with eleven
  digits, landlines with their area code, bank cards of 16 to 19 digits,
  E.164 numbers), an 18-character resident ID number (17 digits and a check
  digit, which may be X), and any run of seven or more digits with a spoken
  Chinese numeral in it. Resident ID numbers are masked whatever their check
  digit says: a mistyped or misheard ID is still somebody's ID, and masking a
  stray 18-digit number in a log costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Chinese numerals as spoken digit by digit: 幺 is "one" read out in numbers, 两 "two".
CN_DIGITS = "零〇一二三四五六七八九幺两"
_FULL_WIDTH = "０-９"
_DIGITS = f"0-9{_FULL_WIDTH}{CN_DIGITS}"
#: The check digit of a resident ID as written (X, x) and as ASR writes "X" spoken (叉).
_CHECK = "Xx叉"
# A run of at least 6 digits, allowing the spaces, dashes, dots and Chinese commas that people
# and ASR put between groups; ID numbers may end in X.
_RUN = re.compile(
    rf"(?:[{_DIGITS}](?:[\s\-.·，、]|\s\s)?){{5,}}[{_DIGITS}{_CHECK}]",
)
_DIGIT = re.compile(rf"[{_DIGITS}{_CHECK}]")
# In logs a run must stand alone (not part of an id or a hash) and groups are split by
# spaces or dashes only, so dates, versions and addresses are left alone.
_STANDALONE = re.compile(
    rf"(?<![0-9A-Za-z{_FULL_WIDTH}_])\+?[{_DIGITS}](?:[ \-\u3000，、]?[{_DIGITS}]){{5,}}"
    rf"[{_CHECK}]?(?![0-9A-Za-z{_FULL_WIDTH}_])"
)
_SPOKEN = re.compile(f"[{CN_DIGITS}]")
KEEP = 4
#: Digits in a run standing alone that make it personal data in a log line.
LONG_RUN = 11
#: Digits in a run with a spoken Chinese numeral that make it personal data.
SPOKEN_RUN = 7


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    positions = [m.start() for m in _DIGIT.finditer(run)]
    hidden = set(positions[:-KEEP])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(run))


def mask_numbers(text: str) -> str:
    """Every run of six or more digits (any script) masked but its last four; same length."""
    return _RUN.sub(_mask_run, text)


def _personal(match: re.Match[str]) -> str:
    run = match.group()
    digits = len(_DIGIT.findall(run))
    if digits >= LONG_RUN or (digits >= SPOKEN_RUN and _SPOKEN.search(run)):
        return _mask_run(match)
    return run


def mask_personal(text: str) -> str:
    """Phone, card and resident ID numbers masked in text that also holds ids and counts."""
    return _STANDALONE.sub(_personal, text)


def mask_words(words: Sequence[str]) -> list[str]:
    """The words of a segment masked as their joined text is, so a number spoken across
    several words (一三八 / 零零一三 / 八零零零) is masked in each of them.

    Masking keeps the text's length, so the joined text masked is cut back at
    the same places; a digit in a word that is no part of a masked run stays.
    """
    masked = mask_numbers("".join(words))
    out: list[str] = []
    at = 0
    for word in words:
        out.append(masked[at : at + len(word)])
        at += len(word)
    return out


def has_masked(text: str) -> bool:
    return "*" in text

"""Masking sensitive numbers heard in a call before a transcript is stored.

Card numbers, national ID numbers, phone numbers and bank accounts said
aloud end up in transcripts as digits or as Chinese numerals. PCI DSS
forbids storing a card number in the clear, and the rest is personal data;
nothing downstream (storage, search index, snippets, QA) needs the digits,
so they are masked once, here, keeping the last four as payment systems do.
The unmasked text is not kept anywhere.
"""

from __future__ import annotations

import re

_CN_DIGITS = "零〇一二三四五六七八九幺两"
# A run of at least 6 digits, allowing the spaces, dashes and dots people and ASR put
# between groups; ID numbers may end in X.
_RUN = re.compile(
    rf"(?:[0-9{_CN_DIGITS}][\s\-.·]?){{5,}}[0-9{_CN_DIGITS}Xx]",
)
_DIGIT = re.compile(rf"[0-9{_CN_DIGITS}Xx]")
KEEP = 4


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    positions = [m.start() for m in _DIGIT.finditer(run)]
    hidden = set(positions[:-KEEP])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(run))


def mask_numbers(text: str) -> str:
    return _RUN.sub(_mask_run, text)


def has_masked(text: str) -> bool:
    return "*" in text

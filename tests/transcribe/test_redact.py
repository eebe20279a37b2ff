"""Sensitive numbers in transcripts: masked whatever shape the ASR gave them."""

from __future__ import annotations

import pytest

from transcribe.redact import mask_numbers


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("my card is 4111 1111 1111 1234", "my card is **** **** **** 1234"),
        ("卡号6222021234567890123", "卡号***************0123"),
        ("身份证号11010519491231002X", "身份证号**************002X"),
        ("call me on 138-0013-8000", "call me on ***-****-8000"),
        ("我的电话是一三八零零一三八零零零", "我的电话是*******八零零零"),
        ("the code is 123", "the code is 123"),  # short numbers stay: amounts, dates
        ("you owe 2,500 yuan by March 15", "you owe 2,500 yuan by March 15"),
        ("还款3000元", "还款3000元"),
        ("账号 6217 0000 1111 2222 333", "账号 **** **** **** ***2 333"),
    ],
)
def test_mask_numbers(said: str, stored: str) -> None:
    assert mask_numbers(said) == stored

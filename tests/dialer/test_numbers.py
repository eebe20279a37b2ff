"""Numbers in every shape an agent or an import file may give them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dialer.numbers import MalformedNumber, mask, normalize, zone_for_number


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("13800138000", "CN", "+8613800138000"),
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138-0013-8000", "CN", "+8613800138000"),
        ("008613800138000", "CN", "+8613800138000"),
        ("010 6552 9988", "CN", "+861065529988"),  # Beijing landline
        ("(212) 555-0100", "US", "+12125550100"),
        ("+1 212 555 0100", "CN", "+12125550100"),  # country code beats the default region
    ],
)
def test_normalize(raw: str, region: str, e164: str) -> None:
    assert normalize(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "not a phone number"),
        ("hello", "not a phone number"),
        ("+", "not a phone number"),
        ("1380013800", "not a valid number"),  # one digit short
        ("138001380001", "not a valid number"),  # one digit long
        ("+999 1234 5678", "unknown country code"),
        ("12345", "not a valid number"),
        ("13800138000;ext=1 OR 1=1", "not a"),
    ],
)
def test_malformed_numbers_are_refused(raw: str, why: str) -> None:
    with pytest.raises(MalformedNumber, match=why) as refused:
        normalize(raw, "CN")
    assert raw[-6:] not in str(refused.value) or len(raw) < 7  # never echoed whole


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613800138000", "+86138****8000"),
        ("+12125550100", "+121****0100"),
        ("13800138000", "138****8000"),
        ("1234", "**34"),
        ("12345", "***45"),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+8613800138000", ZoneInfo("Asia/Shanghai")),
        ("+12125550100", ZoneInfo("America/New_York")),
        ("+14155550100", ZoneInfo("America/Los_Angeles")),
        ("+18005550100", None),  # toll-free: no single zone
    ],
)
def test_zone_for_number(number: str, zone: ZoneInfo | None) -> None:
    assert zone_for_number(number) == zone


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("13800ABC000", "has letters in it"),  # a keypad would dial 13800222000
        ("1380013800a", "has letters in it"),
        ("+86 138 0013 800O", "has letters in it"),  # a letter O for a zero
        ("1-800-FLOWERS", "has letters in it"),
        ("13800138000;ext=12", "has an extension"),
        ("13800138000 x123", "has an extension"),
        ("+86 138 0013 8000 ext. 5", "has an extension"),
        ("13800138000#12", "has an extension"),
        ("13800138000,,12", "has an extension"),
        ("13800138000转123", "has an extension"),
        ("13800138000分机123", "has an extension"),
    ],
)
def test_letters_and_extensions_are_refused(raw: str, why: str) -> None:
    """Letters are a data error, not a vanity number; an extension would be lost silently."""
    with pytest.raises(MalformedNumber, match=why):
        normalize(raw, "CN")


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("13800ABC000", "CN", "+8613800222000"),
    ],
)
def test_vanity_numbers_only_where_the_site_turns_them_on(raw: str, region: str, e164: str) -> None:
    assert normalize(raw, region, allow_vanity=True) == e164
    with pytest.raises(MalformedNumber, match="has letters in it") as refused:
        normalize(raw, region)
    assert "DIALGUARD_ALLOW_VANITY_NUMBERS" in refused.value.hint
    assert "ABC" not in str(refused.value) and "FLOWERS" not in str(refused.value)


def test_an_extension_is_refused_even_with_vanity_numbers_on() -> None:
    with pytest.raises(MalformedNumber, match="has an extension"):
        normalize("1-800-FLOWERS x12", "US", allow_vanity=True)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("tel:+8613800138000", "+8613800138000"),  # a URI scheme is not a letter in the number
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits are digits
    ],
)
def test_what_is_still_a_number(raw: str, e164: str) -> None:
    assert normalize(raw, "CN") == e164

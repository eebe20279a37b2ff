"""Debtor rows checked field by field: normalised when good, every bad field named at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dialer.debtors import DebtorIn, FieldError, Role, validate_row

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
GOOD: dict[str, Any] = {
    "client": "bank-a",
    "external_id": "ACC-0001",
    "name": "王小明",
    "stage": "Early",
    "timezone": "Asia/Shanghai",
    "numbers": "debtor:138 0013 8000;employer:+86 10 6552 9988",
    "callback_windows": "Mon-Fri 18:00-20:00; Sat 10:00-12:00",
}


def good_row(**changes: Any) -> DebtorIn:
    checked = validate_row({**GOOD, **changes}, "CN")
    assert isinstance(checked, DebtorIn), checked
    return checked


def test_a_good_row_is_normalised() -> None:
    debtor = good_row()
    assert (debtor.client_id, debtor.external_id, debtor.stage) == ("bank-a", "ACC-0001", "early")
    assert [(n.role, n.e164) for n in debtor.numbers] == [
        (Role.DEBTOR, "+8613800138000"),
        (Role.EMPLOYER, "+861065529988"),
    ]
    assert [w.as_json() for w in debtor.windows] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00", "end": "20:00"},
        {"days": ["sat"], "start": "10:00", "end": "12:00"},
    ]
    assert "王小明" not in repr(debtor) and "8000" not in repr(debtor)


def test_json_shapes_and_a_missing_zone_taken_from_the_debtor_number() -> None:
    debtor = good_row(
        timezone="",
        numbers=[
            {"role": "emergency_contact", "number": "13900139000"},
            {"role": "Debtor", "number": "+8613800138000"},
        ],
        callback_windows='[{"days": ["sat", "sun"], "start": "9:00", "end": "11:30"}]',
    )
    assert debtor.timezone == "Asia/Shanghai"
    assert [n.role for n in debtor.numbers] == [Role.EMERGENCY, Role.DEBTOR]
    assert [w.as_json() for w in debtor.windows] == [
        {"days": ["sat", "sun"], "start": "09:00", "end": "11:30"}
    ]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"client": ""}, "client", "required"),
        ({"client": "bank a/../x"}, "client", "letters, digits"),
        ({"external_id": "../etc/passwd"}, "external_id", "letters, digits"),
        ({"name": "  "}, "name", "required"),
        ({"name": "x" * 201}, "name", "longer than 200"),
        ({"name": "Li\u202eLei"}, "name", "control characters"),
        ({"stage": "in legal!"}, "stage", "lower-case"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"timezone": "../../etc/localtime"}, "timezone", "IANA"),
        ({"numbers": ""}, "numbers", "at least one number"),
        ({"numbers": "boss:13800138000"}, "numbers", "unknown role"),
        ({"numbers": "13800138000"}, "numbers", "role:number"),
        ({"numbers": "debtor:12345"}, "numbers", "not a valid number"),
        ({"numbers": "debtor:13800138000;relative:+8613800138000"}, "numbers", "listed twice"),
        ({"callback_windows": "Mon-Fri 20:00-18:00"}, "callback_windows", "ends before"),
        ({"callback_windows": "Funday 10:00-12:00"}, "callback_windows", "unknown days"),
        ({"callback_windows": "Mon 25:00-26:00"}, "callback_windows", "HH:MM"),
        ({"callback_windows": "evenings"}, "callback_windows", "Mon-Fri 18:00-20:00"),
        ({"callback_windows": "[{"}, "callback_windows", "not valid JSON"),
        ({"timezone": "", "numbers": "relative:13800138000"}, "timezone", "required"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], field: str, words: str) -> None:
    checked = validate_row({**GOOD, **changes}, "CN")
    assert isinstance(checked, list)
    assert [e.field for e in checked] == [field]
    assert words in checked[0].message


def test_every_bad_field_of_a_row_is_reported_at_once_without_personal_data() -> None:
    checked = validate_row(
        {**GOOD, "name": "", "stage": "", "numbers": "debtor:+86138001380"}, "CN"
    )
    assert isinstance(checked, list)
    assert [e.field for e in checked] == ["name", "stage", "numbers"]
    assert all(isinstance(e, FieldError) for e in checked)
    assert "138001380" not in checked[2].message  # masked, not the digits


def test_letters_in_a_number_are_a_data_error_unless_vanity_numbers_are_on() -> None:
    """`13800ABC000` is a typo in the collection system, not a number to read off a keypad."""
    row = {**GOOD, "numbers": "debtor:13800ABC000"}
    errors = validate_row(row, "CN")
    assert isinstance(errors, list)
    assert [(e.field, "has letters in it" in e.message) for e in errors] == [("numbers", True)]
    assert "ABC" not in errors[0].message
    allowed = validate_row(row, "CN", allow_vanity=True)
    assert isinstance(allowed, DebtorIn) and allowed.numbers[0].e164 == "+8613800222000"


def test_an_extension_is_refused_with_its_reason() -> None:
    errors = validate_row({**GOOD, "numbers": "employer:010 6552 9988 x204"}, "CN")
    assert isinstance(errors, list) and "has an extension" in errors[0].message

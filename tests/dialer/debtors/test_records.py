"""Debtors: one row checked field by field, upserted by account, personal data sealed."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dialer.debtors.records import (
    Debtor,
    DebtorIn,
    FieldError,
    Role,
    Sealer,
    find,
    numbers_of,
    upsert,
    validate_row,
    windows_of,
)
from dialer.service import number_key
from recording.crypto import TamperedData
from recording.db.engine import session_factory
from recording.keys import FileKeyRing

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


def _valid(**changes: Any) -> DebtorIn:
    checked = validate_row({**GOOD, **changes}, "CN")
    assert isinstance(checked, DebtorIn), checked
    return checked


def test_a_good_row_is_normalised() -> None:
    debtor = _valid()
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
    debtor = _valid(
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


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(FileKeyRing(tmp_path / "keys" / "kek.json"), os.urandom(32))


def test_upsert_creates_then_replaces_on_both_databases(engine: Engine, sealer: Sealer) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        counts = upsert(session, [_valid(), _valid(external_id="ACC-0002")], sealer, NOW)
        session.commit()
    assert (counts.created, counts.updated) == (2, 0)

    later = NOW + timedelta(days=1)
    changed = _valid(stage="legal", numbers="relative:13900139000", callback_windows="")
    with sessions() as session:
        counts = upsert(session, [changed], sealer, later)
        session.commit()
    assert (counts.created, counts.updated) == (0, 1)

    with sessions() as session:
        debtor = find(session, "bank-a", "ACC-0001")
        assert debtor is not None
        assert debtor.stage == "legal" and windows_of(debtor) == []
        numbers = numbers_of(session, debtor)
        assert [(n.role, n.number_masked) for n in numbers] == [("relative", "+86139****9000")]
        assert sealer.numbers(debtor, numbers) == ["+8613900139000"]
        assert numbers[0].number_key == number_key(sealer.number_secret, "+8613900139000")
        assert sealer.name(debtor) == "王小明"
        assert debtor.created_at != debtor.updated_at
        assert find(session, "bank-b", "ACC-0001") is None
        assert session.query(Debtor).count() == 2


def test_raw_rows_hold_no_name_and_no_full_number(engine: Engine, sealer: Sealer) -> None:
    with session_factory(engine)() as session:
        upsert(session, [_valid()], sealer, NOW)
        session.commit()
    with engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM debtors")).all())
        dump += repr(conn.execute(text("SELECT * FROM debtor_numbers")).all())
    blob = dump.encode() + b"".join(
        bytes(cell) for cell in _binary_cells(engine)
    )  # the ciphertexts as bytes too, in case a driver shows them differently
    for secret in ("王小明", "13800138000", "1065529988"):
        assert secret not in dump
        assert secret.encode() not in blob
    assert "+86138****8000" in dump and "+8610****9988" in dump


def _binary_cells(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        rows = [*conn.execute(text("SELECT name_ct, wrapped_key FROM debtors"))]
        rows += [*conn.execute(text("SELECT number_ct FROM debtor_numbers"))]
    return [bytes(cell) for row in rows for cell in row]


def test_a_ciphertext_moved_to_another_account_does_not_open(
    engine: Engine, sealer: Sealer
) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        upsert(session, [_valid(), _valid(external_id="ACC-0002", name="李雷")], sealer, NOW)
        session.commit()
        one = find(session, "bank-a", "ACC-0001")
        two = find(session, "bank-a", "ACC-0002")
        assert one is not None and two is not None
        two.name_ct, two.kek_id, two.wrapped_key = one.name_ct, one.kek_id, one.wrapped_key
        session.commit()
        with pytest.raises(TamperedData, match="does not authenticate"):
            sealer.name(two)

"""Debtors' names and numbers sealed at rest, each row under its own key and bound to it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dialer.debtors import Sealer, find, upsert
from recording.crypto import TamperedData
from recording.db.engine import session_factory
from tests.dialer.debtors.test_validation import NOW, good_row


def test_raw_rows_hold_no_name_and_no_full_number(engine: Engine, sealer: Sealer) -> None:
    with session_factory(engine)() as session:
        upsert(session, [good_row()], sealer, NOW)
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
        upsert(session, [good_row(), good_row(external_id="ACC-0002", name="李雷")], sealer, NOW)
        session.commit()
        one = find(session, "bank-a", "ACC-0001")
        two = find(session, "bank-a", "ACC-0002")
        assert one is not None and two is not None
        two.name_ct, two.kek_id, two.wrapped_key = one.name_ct, one.kek_id, one.wrapped_key
        session.commit()
        with pytest.raises(TamperedData, match="does not authenticate"):
            sealer.name(two)

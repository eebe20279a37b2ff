"""Debtors upserted by account on both databases, then found again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from dialer.debtors import Debtor, Sealer, find, numbers_of, upsert, windows_of
from dialer.numbers import number_key
from recording.db.engine import session_factory
from tests.dialer.debtors.test_validation import NOW, good_row


def test_upsert_creates_then_replaces_on_both_databases(engine: Engine, sealer: Sealer) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        counts = upsert(session, [good_row(), good_row(external_id="ACC-0002")], sealer, NOW)
        session.commit()
    assert (counts.created, counts.updated) == (2, 0)

    later = NOW + timedelta(days=1)
    changed = good_row(stage="legal", numbers="relative:13900139000", callback_windows="")
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

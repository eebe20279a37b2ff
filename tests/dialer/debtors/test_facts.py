"""A debtor's facts from the one function the agent's page, the click-to-call route and the
worker all ask: the record's, the same again read back from a request, a number's holders."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dialer.debtors import Debtor, DebtorFacts, Sealer, debtor_facts, find, upsert
from dialer.models import CallRequest
from recording.db.engine import session_factory
from tests.dialer.debtors.test_validation import NOW, good_row


def _stored(engine: Engine, sealer: Sealer, *accounts: str) -> list[Debtor]:
    """Accounts of bank-a that share one debtor number (good_row's)."""
    with session_factory(engine)() as session:
        upsert(session, [good_row(external_id=account) for account in accounts], sealer, NOW)
        session.commit()
        found = [find(session, "bank-a", account) for account in accounts]
    return [debtor for debtor in found if debtor is not None]


def test_a_request_carries_the_records_facts_to_the_worker(engine: Engine, sealer: Sealer) -> None:
    [debtor] = _stored(engine, sealer, "ACC-1")
    facts = debtor_facts(debtor)
    assert (facts.debtor_id, facts.client_id, str(facts.zone)) == (
        "ACC-1",
        "bank-a",
        "Asia/Shanghai",
    )
    assert [w["start"] for w in facts.callback_windows] == ["18:00", "10:00"]
    columns = facts.request_columns()
    # What the route copied from the record before the facts had one home, byte for byte.
    assert columns["debtor_tz"] == debtor.timezone
    assert columns["callback_windows_json"] == debtor.callback_windows_json
    sessions = session_factory(engine)
    with sessions() as session:
        request = CallRequest(
            agent="agent1",
            number_sealed=b"",
            number_masked="+86138****8000",
            requested_by="sup",
            status="queued",
            created_at=NOW,
            **columns,
        )
        session.add(request)
        session.commit()
        assert debtor_facts(session=session, request_id=request.id) == facts
    assert DebtorFacts().request_columns() == dict.fromkeys(columns)


def test_a_keypad_call_is_the_holders_and_a_long_account_id_goes_without(
    engine: Engine, sealer: Sealer
) -> None:
    one, long = _stored(engine, sealer, "ACC-1", "X" * 65)
    key = sealer.key_of("+8613800138000")
    with session_factory(engine)() as session:
        shared = debtor_facts(session=session, number_key=key)
        nobody = debtor_facts(session=session, number_key=sealer.key_of("+8613900139000"))
    assert shared == DebtorFacts(holders=(("bank-a", "ACC-1"), ("bank-a", "X" * 65)))
    assert nobody == DebtorFacts()
    assert debtor_facts(one).holders == ()
    assert debtor_facts(long) == DebtorFacts(), "a request cannot carry it: the number decides"

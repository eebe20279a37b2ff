"""Calls in flight count: a decision books the call it allows in the same transaction, so
agents dialing one debtor at the same moment, from threads or processes, get exactly the
cap through, on SQLite and PostgreSQL; a reservation ends in exactly one attempt, whether
the call ends, fails before the trunk, or its worker is killed; a database that does not
answer refuses the call.
"""

from __future__ import annotations

import multiprocessing
import secrets
import socket
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine

from dialer.booking import finish_call
from dialer.calls import CallRecord, Ended
from dialer.debtors import DebtorIn, Sealer, upsert, validate_row
from dialer.decision import HISTORY, caller_id_check, history, policy_decider
from dialer.models import AttemptReservation, CallAttempt, CallRequest, LiveCall
from dialer.numbers import number_key
from dialer.policy import preset
from dialer.reservations import DecisionUnavailable, settle_abandoned
from dialer.site import CallSite
from recording.db.engine import session_factory
from tests.dialer.running import Parts, attempts, dialer, office_hours, wait_for
from tests.dialer.sip.test_b2bua import E164, NUMBER, PCAP, agent
from tests.helpers import free_port

OTHER = "+8613900139000"  # the same debtor's second number
WORKER = "host-a/0"


def _call_id() -> str:
    return secrets.token_hex(8)


def _at_once(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, all released at the same moment."""
    gate = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # kept for the assertion, not swallowed
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _in_flight(engine: Engine) -> list[AttemptReservation]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(AttemptReservation)))


def _counted(site: CallSite, debtor_id: str | None = None) -> int:
    """How many calls the policy sees for the number (and debtor), ended or in flight."""
    key = number_key(site.number_secret, E164)
    with site.sessions() as session:
        return len(history(session, key, office_hours() - HISTORY, debtor_id))


def _debtor(external_id: str, numbers: str) -> DebtorIn:
    row = validate_row(
        {
            "client": "bank-a",
            "external_id": external_id,
            "name": "王小明",
            "stage": "early",
            "timezone": "Asia/Shanghai",
            "numbers": numbers,
        },
        "CN",
    )
    assert isinstance(row, DebtorIn), row
    return row


def _requests(engine: Engine, debtor_id: str, n: int) -> list[int]:
    """`n` click-to-calls for the debtor, as the API queues them (the debtor's facts copied)."""
    with session_factory(engine)() as session:
        rows = [
            CallRequest(
                agent=f"agent{i}",
                number_sealed=b"",
                number_masked="+86139****9000",
                debtor_id=debtor_id,
                client_id="bank-a",
                debtor_tz="Asia/Shanghai",
                requested_by="sup",
                status="claimed",
                created_at=office_hours(),
            )
            for i in range(n)
        ]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def test_twenty_agents_dialing_one_debtor_at_once_get_exactly_the_cap(
    parts: Parts, engine: Engine
) -> None:
    """cn-default allows 3 calls a day: 20 simultaneous decisions let exactly 3 through,
    the rest are refused with the rule and the next allowed time."""
    site = parts.site()
    decide = policy_decider(site, WORKER)
    results = _at_once([partial(decide, E164, None, _call_id(), f"agent{i}") for i in range(20)])
    assert not [r for r in results if isinstance(r, Exception)], results
    allowed = [r for r in results if r[0]]
    refused = [r for r in results if not r[0]]
    assert len(allowed) == 3, results
    assert {r[1] for r in refused} == {"daily_cap"}
    assert all("3 of them still in progress" in r[2] for r in refused), refused[0]
    assert all("Next allowed: 2026-11-25 08:00 (Asia/Shanghai)" in r[2] for r in refused)
    assert len(_in_flight(engine)) == 3
    assert _counted(site) == 3


def test_keypad_and_click_to_call_for_one_debtor_share_its_cap(
    parts: Parts, engine: Engine
) -> None:
    """Softphones dialing the debtor's number and click-to-calls to its other number, all at
    once: the debtor's 3 a day hold across both, whichever way each call was started."""
    site = parts.site()
    with session_factory(engine)() as session:
        upsert(
            session,
            [_debtor("D-1", f"debtor:{NUMBER};debtor:{OTHER}")],
            Sealer(site.keys, site.number_secret),
            office_hours(),
        )
        session.commit()
    requests = _requests(engine, "D-1", 10)
    decide = policy_decider(site, WORKER)
    keypad = [partial(decide, E164, None, _call_id(), "agent1") for _ in range(10)]
    clicks = [partial(decide, OTHER, r, _call_id(), "agent2") for r in requests]
    results = _at_once(keypad + clicks)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(1 for r in results if r[0]) == 3, results
    assert {r[1] for r in results if not r[0]} == {"daily_cap"}
    assert {row.debtor_id for row in _in_flight(engine)} == {"D-1"}


def _decide_in_process(
    parts: Parts, index: int, threads: int, ready: Any, go: Any, out: Any
) -> None:
    site = parts.site()
    decide = policy_decider(site, f"host-{index}/0")
    with site.sessions() as session:  # connect before the start, like a running worker
        session.execute(select(1))
    ready.put(index)
    go.wait(60)
    out.put(_at_once([partial(decide, E164, None, _call_id(), "agent1") for _ in range(threads)]))


def test_dialer_processes_deciding_at_once_get_exactly_the_cap(
    parts: Parts, engine: Engine
) -> None:
    """Four worker processes, five calls each, one debtor: the lock is the database's."""
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    processes = [
        ctx.Process(target=_decide_in_process, args=(parts, i, 5, ready, go, out)) for i in range(4)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=60)
        go.set()
        results = [r for _ in processes for r in out.get(timeout=60)]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    assert len(results) == 20
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(1 for r in results if r[0]) == 3, results
    assert len({row.worker for row in _in_flight(engine)}) >= 1
    assert len(_in_flight(engine)) == 3


def test_regf_allows_no_second_call_while_one_may_become_a_conversation(
    parts: Parts, engine: Engine
) -> None:
    site = replace(parts.site(), policy=preset("us-regf"))
    decide = policy_decider(site, WORKER)
    results = _at_once([partial(decide, E164, None, _call_id(), "agent1") for _ in range(5)])
    assert sum(1 for r in results if r[0]) == 1, results
    assert {r[1] for r in results if not r[0]} == {"regf_after_conversation"}
    assert all("still in progress" in r[2] for r in results if not r[0])


def _record(call_id: str, *, placed: bool = True, answered: bool = False) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        sip_call_id=f"{call_id}@agent",
        agent="agent1",
        number="+86138****8000",
        caller_id="+861058000000" if placed else None,
        started_at=office_hours().timestamp(),
        answered=answered,
        duration_s=12.0 if answered else 0.0,
        sip_status=200 if answered else (486 if placed else 503),
        sip_reason="OK" if answered else ("Busy Here" if placed else "No Caller ID Available"),
        ended_by=Ended.AGENT if answered else Ended.CARRIER,
        rule=None,
        recording=None,
        e164=E164,
    )


def test_a_reservation_ends_in_exactly_one_attempt(parts: Parts, engine: Engine) -> None:
    site = parts.site()
    decide = policy_decider(site, WORKER)
    busy, never_dialed = _call_id(), _call_id()
    assert decide(E164, None, busy, "agent1")[0]
    assert decide(E164, None, never_dialed, "agent1")[0]
    assert _counted(site) == 2
    finish_call(site, _record(busy))  # ended busy: an attempt, still counted once
    assert _counted(site) == 2
    # No caller ID was left for it: it never reached the trunk, so it stops counting.
    finish_call(site, _record(never_dialed, placed=False))
    assert _counted(site) == 1
    assert _in_flight(engine) == []
    booked = {a.call_id: a for a in attempts(engine)}
    assert set(booked) == {busy, never_dialed}
    assert (booked[busy].placed, booked[busy].sip_status) == (True, 486)
    assert booked[never_dialed].placed is False


def test_a_worker_killed_between_decision_and_invite_is_settled_once(
    parts: Parts, engine: Engine
) -> None:
    """The decision booked the call, then the worker died before the INVITE: the restart
    settles the reservation as one unanswered attempt, never drops it, never adds one."""
    site = parts.site()
    decide = policy_decider(site, WORKER)
    orphan, elsewhere, old_elsewhere, running = (_call_id() for _ in range(4))
    assert decide(E164, None, orphan, "agent1")[0]  # ... and then SIGKILL
    assert policy_decider(site, "host-b/1")(E164, None, elsewhere, "agent2")[0]
    assert _counted(site) == 2
    with session_factory(engine)() as session:  # two more of host-b's, long ago
        for call_id in (old_elsewhere, running):
            session.add(
                AttemptReservation(
                    call_id=call_id,
                    agent="agent3",
                    number_key=number_key(site.number_secret, OTHER),
                    number_masked="+86139****9000",
                    reserved_at=office_hours() - timedelta(hours=1),
                    worker="host-b/1",
                )
            )
        session.add(  # one of them is still carried: a long call
            LiveCall(call_id=running, agent="agent3", worker=1, started_at=office_hours())
        )
        session.commit()
    # The restart of host-a/0: its own calls, and anyone's long abandoned ones.
    assert settle_abandoned(site.sessions, office_hours(), WORKER) == 2
    assert settle_abandoned(site.sessions, office_hours(), WORKER) == 0  # once only
    assert {r.call_id for r in _in_flight(engine)} == {elsewhere, running}
    settled = {a.call_id: a for a in attempts(engine)}
    assert set(settled) == {orphan, old_elsewhere}
    assert (settled[orphan].placed, settled[orphan].answered) == (True, False)
    assert "dialer stopped" in settled[orphan].sip_reason
    assert _counted(site) == 2, "the settled call still counts, once"
    # Its call did go on after all (a worker that only stalled): the outcome replaces the guess.
    finish_call(site, _record(orphan, answered=True))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(CallAttempt)) == 2
        row = session.scalar(select(CallAttempt).where(CallAttempt.call_id == orphan))
        assert row is not None and (row.answered, row.sip_status) == (True, 200)
    assert _counted(site) == 2


def test_one_call_at_a_time_tries_a_caller_id_back_from_its_cooloff(
    parts: Parts, engine: Engine
) -> None:
    site = parts.site()
    cid = "+861058000000"
    with session_factory(engine)() as session:
        for i in range(5):  # five blocked calls, 25 hours ago: the cool-off is over
            session.add(
                CallAttempt(
                    call_id=f"blocked{i}",
                    sip_call_id=f"b{i}",
                    agent="agent1",
                    number_key=f"k{i}",
                    number_masked="+86137****0000",
                    started_at=office_hours() - timedelta(hours=25, minutes=i),
                    placed=True,
                    answered=False,
                    duration_s=0.0,
                    sip_status=403,
                    sip_reason="Forbidden",
                    ended_by="carrier",
                    caller_id=cid,
                )
            )
        session.commit()
    decide = policy_decider(site, WORKER)
    calls = [_call_id() for _ in range(6)]
    numbers = [f"+86138001380{i:02}" for i in range(6)]
    for call_id, number in zip(calls, numbers, strict=True):
        assert decide(number, None, call_id, "agent1")[0]
    usable = caller_id_check(site)
    results = _at_once([partial(usable, cid, c) for c in calls])
    assert sorted(results) == [False] * 5 + [True], results
    [trial] = [r for r in _in_flight(engine) if r.caller_id is not None]
    assert trial.caller_id == cid


def _unreachable_site(parts: Parts, database_url: str, engine: Engine) -> CallSite:
    """The site's database, gone: PostgreSQL on a port nobody listens on; SQLite held by
    another writer past the busy timeout."""
    site = parts.site()
    if database_url.startswith("postgresql"):
        url = engine.url.set(port=free_port())
        gone = create_engine(url, connect_args={"connect_timeout": 2})
    else:
        gone = create_engine(database_url, connect_args={"timeout": 0.5})

        @event.listens_for(gone, "connect")
        def _short(dbapi: sqlite3.Connection, _: Any) -> None:
            dbapi.execute("PRAGMA busy_timeout=500")

    return replace(site, sessions=session_factory(gone))


def test_a_database_unavailable_during_a_decision_refuses_the_call(
    parts: Parts, engine: Engine, database_url: str
) -> None:
    site = _unreachable_site(parts, database_url, engine)
    holder = None
    if database_url.startswith("sqlite"):
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=1)
        holder.execute("BEGIN EXCLUSIVE")  # a writer that does not let go
    try:
        with pytest.raises(DecisionUnavailable) as refused:
            policy_decider(site, WORKER)(E164, None, _call_id(), "agent1")
        assert "the call is not placed" in str(refused.value)
        assert "database did not answer" in str(refused.value)
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    assert _in_flight(engine) == [], "nothing was booked"
    # The database is back: the same decision goes through.
    assert policy_decider(parts.site(), WORKER)(E164, None, _call_id(), "agent1")[0]


@pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")
def test_a_worker_killed_while_its_call_rings_books_it_once_at_restart(
    parts: Parts, engine: Engine
) -> None:
    """A real dialer process, killed while the trunk leg rings: the call stays counted, and
    the restart books it as one unanswered attempt."""
    site = parts.site()
    with dialer(parts) as running:
        trunk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        trunk.bind(("127.0.0.1", running.trunk_port))
        trunk.settimeout(15)
        caller = threading.Thread(
            target=agent, args=(running, "b2b_agent_cancel.xml"), kwargs={"timeout": 8}
        )
        caller.start()
        try:
            assert trunk.recv(65535).startswith(b"INVITE "), "the call reached the trunk"
            [reserved] = _in_flight(engine)
            running.process.kill()  # no CANCEL, no booking
            running.process.join()
        finally:
            trunk.close()
        caller.join(30)
        assert _counted(site) == 1 and attempts(engine) == []
    with dialer(parts):  # the restart settles what its predecessor left
        [booked] = wait_for(lambda: attempts(engine))
    assert booked.call_id == reserved.call_id
    assert (booked.placed, booked.answered, booked.sip_status) == (True, False, 0)
    assert _in_flight(engine) == []
    assert _counted(site) == 1

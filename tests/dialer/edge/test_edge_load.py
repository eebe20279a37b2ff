"""Dispatch by load: the edge hands each worker at most the calls it carries (2, pjsua2's
4 legs), sends a new call to the least loaded worker, and counts a call until its BYE."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.dialer.edge.conftest import AGENTS, StartEdge
from tests.dialer.edge.sipclient import Agent


def _call(port: int, hold_s: float, number: str) -> int:
    agent = Agent("127.0.0.1", port, "alice", AGENTS["alice"], timeout=3.0)
    try:
        reply = agent.call(number=number, hold_s=hold_s)
        return reply.status if reply is not None else 0
    finally:
        agent.close()


def _together(port: int, calls: int, hold_s: float) -> list[int]:
    """Calls up at the same time, set up 0.3 s apart. Two INVITEs in the same instant can
    both find room on one worker (Kamailio picks and counts in two steps); the worker's
    own 503 and the edge's failover to the next worker cover that case (tested with real
    workers in tests/dialer/sip/test_b2bua_edge.py and test_a_busy_worker_passes_...)."""

    def one(n: int) -> int:
        time.sleep(0.3 * n)
        return _call(port, hold_s, f"1380013{n:04d}")

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(one, range(calls)))


def test_a_worker_is_never_handed_more_calls_than_it_carries(start_edge: StartEdge) -> None:
    edge = start_edge(workers=1)
    statuses = _together(edge.port, 3, hold_s=5.0)
    # two calls up at once on the one worker; the third is refused by the edge itself
    assert sorted(statuses) == [200, 200, 503], statuses
    assert len(edge.workers[0].invites()) == 2
    # the BYEs freed the worker: the next call goes through
    assert _call(edge.port, 0.1, "13800139999") == 200
    assert len(edge.workers[0].invites()) == 3


def test_calls_spread_over_the_least_loaded_workers(start_edge: StartEdge) -> None:
    edge = start_edge(workers=2)
    statuses = _together(edge.port, 4, hold_s=5.0)
    assert statuses == [200] * 4, statuses
    assert [len(w.invites()) for w in edge.workers] == [2, 2]

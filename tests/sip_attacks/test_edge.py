"""The same attacks against the Kamailio edge: RFC 4475, the corpus, SIPVicious.

The edge is started by the edge suite's own fixture (tests/dialer/edge:
`start_edge`, Kamailio with SIPp standing in for the workers behind it), so
both suites attack the edge `dialguard up` runs. Its bans are raised out of
reach for the fuzz runs: a ban would answer everything with silence and hide
the parser; the bans themselves are the edge suite's to test. For SIPVicious
the edge keeps its real bans, as an attacker would meet them.

Beyond the worker's rules: nothing unauthenticated may get past the edge to
a worker (the SIPp workers' message logs hold no INVITE afterwards).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip_attacks import sipvicious
from tests.sip_attacks.corpus import Transport, corpus
from tests.sip_attacks.runner import Report, TortureUnavailable, run_cases, torture_cases

try:
    from dialer.edge.config import EdgeBans
    from dialer.edge.process import EdgeError, find_kamailio
    from tests.dialer.edge import conftest as edge_suite

    find_kamailio()
    start_edge = edge_suite.start_edge  # the edge suite's fixture, used here as is
    StartEdge = edge_suite.StartEdge
    Edge = edge_suite.Edge
    AGENT, PASSWORD = next(iter(edge_suite.AGENTS.items()))
except (ImportError, AttributeError, EdgeError) as exc:  # pragma: no cover - edge not built
    pytest.skip(f"edge not available: {exc}", allow_module_level=True)

NO_BANS = EdgeBans(
    flood_requests=1_000_000,
    login_failures=1_000_000,
    account_failures=1_000_000,
    source_failures=1_000_000,
)


def _check(report: Report, edge: Edge) -> None:
    print(report.summary())
    assert not report.offending, report.summary()
    assert not report.options_failures, report.summary()
    assert edge.process.alive(), f"the edge died: {report.summary()}"
    for worker in edge.workers:
        assert worker.invites() == [], "an unauthenticated INVITE got past the edge"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rfc4475_torture_messages(start_edge: StartEdge, transport: Transport) -> None:
    try:
        cases = torture_cases()
    except TortureUnavailable as exc:
        pytest.skip(str(exc))
    edge = start_edge(bans=NO_BANS)
    _check(run_cases("127.0.0.1", edge.port, transport, cases), edge)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_generated_corpus(start_edge: StartEdge, transport: Transport) -> None:
    edge = start_edge(bans=NO_BANS)
    _check(run_cases("127.0.0.1", edge.port, transport, corpus()), edge)


def _scanned(edge: Edge) -> None:
    assert edge.process.alive()
    for worker in edge.workers:
        assert worker.invites() == [], "a scan got an INVITE past the edge"


@pytest.fixture
def scanned_edge(start_edge: StartEdge) -> Edge:
    """An edge with its real bans, as an attacker meets it."""
    if (why := sipvicious.available()) is not None:
        pytest.skip(why)
    return start_edge()


def test_svmap_may_see_the_edge_but_places_no_call(scanned_edge: Edge, tmp_path: Path) -> None:
    run = sipvicious.svmap(scanned_edge.port, tmp_path)
    print("svmap found:", run.found)
    _scanned(scanned_edge)


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_svwar_finds_no_account_at_the_edge(
    scanned_edge: Edge, tmp_path: Path, method: str
) -> None:
    names = sipvicious.usernames(AGENT)
    run = sipvicious.svwar(scanned_edge.port, names, tmp_path, method)
    assert run.found == [], f"svwar -m {method} found accounts: {run.found}"
    _scanned(scanned_edge)


def test_svcrack_finds_no_password_at_the_edge(scanned_edge: Edge, tmp_path: Path) -> None:
    guesses = sipvicious.passwords(PASSWORD)
    run = sipvicious.svcrack(scanned_edge.port, AGENT, guesses, tmp_path, limit_s=15)
    assert run.found == [], f"svcrack cracked: {run.found}"
    _scanned(scanned_edge)


def test_svcrack_would_report_a_password_in_its_list(scanned_edge: Edge, tmp_path: Path) -> None:
    """The control for the tests above: with the real password among its first guesses,
    svcrack does report it, so "found nothing" means nothing was found."""
    real = PASSWORD
    run = sipvicious.svcrack(scanned_edge.port, AGENT, ["1234", real], tmp_path, limit_s=15)
    assert (AGENT, real) in run.found, run.output[-2000:]

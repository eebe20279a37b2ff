"""SIPVicious against a dialer worker with a real agent in its database.

What an attacker who finds a worker port learns: svmap may see a SIP device
(that is fine, it answers OPTIONS by design), but svwar must find no account
(known and unknown names get the same answer) and svcrack no password, and
nothing any of them sends may place a call: no call attempt booked, nothing
at the carrier.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sip_attacks import sipvicious
from tests.sip_attacks.conftest import AGENT, PASSWORD, Worker

pytestmark = pytest.mark.skipif(
    sipvicious.available() is not None, reason=sipvicious.available() or ""
)


def _no_call(worker: Worker) -> None:
    assert worker.process.is_alive()
    assert worker.call_attempts() == 0, "a scan got a call booked"
    assert worker.carrier.received == [], "a scan reached the carrier"


def test_svmap_may_see_the_device_but_places_no_call(worker: Worker, tmp_path: Path) -> None:
    run = sipvicious.svmap(worker.port, tmp_path)
    assert not run.timed_out, run.output[-2000:]
    print("svmap found:", run.found)
    _no_call(worker)


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
def test_svwar_finds_no_account(worker: Worker, tmp_path: Path, method: str) -> None:
    run = sipvicious.svwar(worker.port, sipvicious.usernames(AGENT), tmp_path, method)
    assert run.found == [], f"svwar -m {method} found accounts: {run.found}"
    _no_call(worker)


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_svcrack_finds_no_password(worker: Worker, tmp_path: Path, method: str) -> None:
    run = sipvicious.svcrack(
        worker.port, AGENT, sipvicious.passwords(PASSWORD), tmp_path, method, limit_s=15
    )
    assert run.found == [], f"svcrack -m {method} cracked: {run.found}"
    assert PASSWORD not in run.output
    _no_call(worker)

"""RFC 4475 and the generated corpus against a real dialer worker, over UDP and TCP.

The worker is `dialguard up`'s B2BUA (pjsua2, its own digest login, a real
agent in SQLite; tests/sip_attacks/conftest.py). What a debt-collection floor
would notice: a packet that makes the worker accept a stranger, place a call,
stop answering, or die.

pjsua2 misbehaves on a few named cases. b2bua.py belongs to the edge work, so
those are not fixed here: they are kept out of the main runs (one of them
would fill the worker and hide everything after it) and each has its own
strict xfail below, which turns into a failure the day it is fixed, so the
xfail can go.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.sip_attacks.conftest import Worker, running_worker
from tests.sip_attacks.corpus import Case, Transport, bases, corpus
from tests.sip_attacks.runner import (
    Report,
    TortureUnavailable,
    exchange,
    options_answered,
    run_cases,
    torture_cases,
)

#: Messages a second a worker survives. pjsua2's select ioqueue has 64 slots; every TCP
#: connection and every INVITE offering media (its RTP and RTCP sockets) takes some for
#: a second or two after it is gone, and one past the 64th aborts the process (see the
#: xfails at the end). Paced below that, the runs test the parser, not that limit.
UDP_PER_S = 30.0
TCP_PER_S = 25.0

#: Cases that once got a wrong answer, each kept as its own test below.
MESSAGE_CASES = (
    "rfc4475/mpart01",
    "request-line/message-text-plain/invite",
    "request-line/message-text-plain/register",
    "request-line/message-text-plain/options",
)
NON_UTF8_USERNAME = "digest/username-non-utf8/invite-auth"


def _without_known(cases: list[Case]) -> list[Case]:
    return [c for c in cases if c.name != NON_UTF8_USERNAME]


def _torture() -> list[Case]:
    try:
        return torture_cases()
    except TortureUnavailable as exc:
        pytest.skip(str(exc))


def _check(report: Report, worker: Worker) -> None:
    print(report.summary())  # the 5xx answers are recorded here (pytest -rA / -s shows them)
    assert not report.offending, report.summary()
    assert not report.options_failures, report.summary()
    assert worker.process.is_alive(), f"the worker died: {report.summary()}"
    assert worker.call_attempts() == 0, "an attack got a call booked"
    assert worker.carrier.received == [], "an attack reached the carrier"


def _pace(transport: Transport) -> float:
    return TCP_PER_S if transport == "tcp" else UDP_PER_S


@pytest.mark.parametrize("transport", ["tcp", "udp"])  # TCP first: RFC 4475 repeats branches
def test_rfc4475_torture_messages(worker: Worker, transport: Transport) -> None:
    cases = _without_known(_torture())
    report = run_cases(worker.host, worker.port, transport, cases, per_s=_pace(transport))
    _check(report, worker)


def test_content_length_and_oversize_cases_over_tcp(worker: Worker) -> None:
    """The TCP-only cases (negative, huge, missing Content-Length, 64 KiB lines), each on
    its own connection."""
    cases = [c for c in _without_known(corpus()) if c.transport == "tcp"]
    report = run_cases(worker.host, worker.port, "tcp", cases, per_s=TCP_PER_S)
    _check(report, worker)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_whole_corpus(worker: Worker, transport: Transport) -> None:
    """Paced, so mostly waiting: it runs beside the other fast suites (~80 s UDP, ~100 s TCP)."""
    cases = _without_known(corpus())
    assert len(cases) >= 2000
    report = run_cases(worker.host, worker.port, transport, cases, per_s=_pace(transport))
    _check(report, worker)
    assert report.counts["4xx"] > 10, "the worker refused almost nothing: is it listening?"


def test_the_worker_still_takes_calls_and_placed_none(worker: Worker) -> None:
    """After everything above: alive, answering, challenging a fresh INVITE, no call placed."""
    assert worker.process.is_alive()
    transports: tuple[Transport, ...] = ("udp", "tcp")
    for transport in transports:
        assert options_answered(worker.host, worker.port, transport) is not None
    invite = bases()["invite"].encode()
    deadline = time.monotonic() + 15  # legs of the flood above may still be closing
    for n in range(1000):
        fresh = invite.replace(b"dgx000000", b"end%06d" % n)
        status, reason = exchange(worker.host, worker.port, "udp", fresh, 2.0)
        if status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 401, f"a fresh INVITE got {status} {reason}, not a challenge"
    assert worker.call_attempts() == 0
    assert worker.carrier.received == [], "an attack reached the carrier"


# --- answers that were wrong once -------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGE_CASES)
def test_an_unauthenticated_message_is_not_accepted(worker: Worker, name: str) -> None:
    """pjsua answers any out-of-dialog MESSAGE 200 OK; the worker's guard refuses it."""
    case = next(c for c in [*corpus(), *_torture()] if c.name == name)
    report = run_cases(worker.host, worker.port, "tcp", [case])
    assert not report.offending, report.summary()


def test_a_non_utf8_digest_username_does_not_fill_the_worker(tmp_path: Path) -> None:
    """A username the database cannot encode once left the leg at 100 Trying, holding a
    call slot for good; three of them filled the worker."""
    case = next(c for c in corpus() if c.name == NON_UTF8_USERNAME)
    with running_worker(tmp_path) as fresh:
        for n in range(4):
            exchange(fresh.host, fresh.port, "udp", case.data.replace(b"dgx", b"p%d_" % n), 0.5)
        invite = bases()["invite"].encode().replace(b"dgx000000", b"after0000")
        status, reason = exchange(fresh.host, fresh.port, "udp", invite, 2.0)
        assert status == 401, f"a fresh INVITE got {status} {reason}"


# --- what pjsua2 gets wrong today ---------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="pjsua2's select ioqueue holds 64 sockets and a new TCP connection past that "
    "aborts the process (pj_ioqueue_register_sock2 assertion): ~64 connections within "
    "about a second kill a worker",
)
def test_a_burst_of_tcp_connections_does_not_kill_the_worker(tmp_path: Path) -> None:
    with running_worker(tmp_path) as fresh:

        def connect() -> None:
            for _ in range(10):
                try:
                    options_answered(fresh.host, fresh.port, "tcp")
                except OSError:
                    return

        threads = [threading.Thread(target=connect) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fresh.process.is_alive(), "100 TCP connections in a burst killed the worker"
        assert options_answered(fresh.host, fresh.port, "udp") is not None


@pytest.mark.xfail(
    strict=True,
    reason="every INVITE offering media makes pjsua2 open its RTP and RTCP sockets before "
    "the digest check; freed a second or two after the 401, so ~32 unauthenticated "
    "INVITEs in a row over UDP fill the 64-slot ioqueue and abort the worker",
)
def test_a_run_of_unauthenticated_invites_does_not_kill_the_worker(tmp_path: Path) -> None:
    invite = bases()["invite"].encode()
    with running_worker(tmp_path) as fresh:
        for n in range(80):
            exchange(fresh.host, fresh.port, "udp", invite.replace(b"dgx", b"f%02d" % n), 0.3)
            if not fresh.process.is_alive():
                break
        assert fresh.process.is_alive(), "80 INVITEs in a row killed the worker"

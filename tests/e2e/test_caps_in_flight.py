"""The caps hold while calls are in flight, through `dialguard up`: agents' softphones (and
click-to-calls) dialing one debtor at the same moment, spread over several dialer worker
processes, get exactly the cap through (cn-default: 3 calls a day); every other call is
refused with the rule and the next allowed time, on the softphone and in the booking.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from dialer.models import AttemptReservation, CallAttempt
from recording.db.engine import make_engine, session_factory
from tests.dialer.sip.test_b2bua import _wait_bound
from tests.e2e.site import PASSWORD, site_with_agent
from tests.e2e.test_up import GREEN_WITHIN, Running, _number_in_daytime
from tests.helpers import DATA, dialguard, free_port, run_sipp, sipp_server

pytestmark = pytest.mark.slow

CAP = 3  # cn-default: calls a day per debtor
ZONES = {  # the numbers `_number_in_daytime` picks from, and their zones
    "+8613800138000": "Asia/Shanghai",
    "+442079460000": "Europe/London",
    "+12125550123": "America/New_York",
    "+13105550123": "America/Los_Angeles",
}


@dataclass
class Product:
    env: dict[str, str]
    running: Running
    trunk_port: int
    number: str
    token: str

    @property
    def sip(self) -> int:
        return int(self.env["DIALGUARD_SIP_PORT"])

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['DIALGUARD_API_PORT']}"


@pytest.fixture
def product(dialguard_env: dict[str, str], database_url: str, tmp_path: Path) -> Iterator[Product]:
    """`dialguard up` with a trunk, 4 dialer workers, one agent, one debtor whose number's
    zone is in daytime now (so only the caps can refuse)."""
    number = _number_in_daytime(datetime.now(UTC))
    zone = ZONES[number]
    site = site_with_agent(
        dialguard_env,
        database_url,
        workers=4,
        caller_ids="+861058000000,+861058000001",
        DIALGUARD_TRANSCRIBE_WORKERS="0",
        DIALGUARD_POLICY_PRESET="cn-default",
    )
    env, trunk_port = site.env, site.trunk_port
    token = dialguard(["admin", "create-token", "agent1"], env)
    assert token.returncode == 0, token.stderr
    debtors = tmp_path / "debtors.csv"
    debtors.write_text(
        "client,external_id,name,stage,timezone,numbers\n"
        f"bank-a,D-1,Wang Xiaoming,early,{zone},debtor:{number}\n"
    )
    imported = dialguard(["debtors", "import", str(debtors)], env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    running = Running(env, tmp_path / "up.log")
    try:
        running.wait_green(GREEN_WITHIN * 2)
        yield Product(env, running, trunk_port, number, token.stdout.strip())
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(60) == 0, running.log.read_text()[-3000:]
    finally:
        running.close()


def _carrier(port: int, log: Path) -> subprocess.Popen[str]:
    """SIPp as the carrier: each call rings 2 s, so the allowed calls overlap the refused."""
    logs = ("-trace_logs", "-log_file", str(log))
    proc = sipp_server("caps_carrier.xml", port, "-m", "20", "-timeout", "90s", *logs)
    _wait_bound(port, proc, limit_s=10)  # the agents must not dial before it listens
    return proc


def _agents(product: Product, calls: int, log: Path) -> subprocess.CompletedProcess[str]:
    """`calls` softphone calls to the debtor's number within one second, through the edge."""
    sip = product.sip
    return subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{sip}",
            "-sf",
            str(DATA / "sipp" / "edge_agent_capped.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(socket.SOCK_DGRAM)),
            "-s",
            product.number,
            "-au",
            "agent1",
            "-ap",
            PASSWORD,
            "-auth_uri",
            f"{product.number}@127.0.0.1:{sip}",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-m",
            str(calls),
            "-l",
            str(calls),
            "-r",
            str(calls),
            "-d",
            "3000",
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_logs",
            "-log_file",
            str(log),
            "-trace_err",
            "-error_file",
            str(log.with_suffix(".err")),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _booked(product: Product, calls: int) -> list[CallAttempt]:
    """Every call booked and none left in flight, within a minute."""
    engine = make_engine(product.env["DIALGUARD_DATABASE_URL"])
    try:
        deadline = time.monotonic() + 60
        while True:
            with session_factory(engine)() as session:
                booked = list(session.scalars(select(CallAttempt).order_by(CallAttempt.id)))
                flying = list(session.scalars(select(AttemptReservation)))
            if len(booked) >= calls and not flying:
                return booked
            assert time.monotonic() < deadline, (len(booked), len(flying))
            time.sleep(0.5)
    finally:
        engine.dispose()


def _outcomes(log: Path) -> dict[str, tuple[str, str]]:
    """SIPp call number -> (worker port, final line) from the agents' log."""
    out: dict[str, tuple[str, str]] = {}
    for call, port, rest in re.findall(r"call (\d+) port (\d+) (final .*)", log.read_text()):
        out[call] = (port, rest)
    return out


def _assert_refused(booked: list[CallAttempt]) -> None:
    placed = [a for a in booked if a.placed]
    refused = [a for a in booked if not a.placed]
    assert len(placed) == CAP, [(a.placed, a.rule, a.sip_status) for a in booked]
    assert {(a.rule, a.sip_status) for a in refused} == {("daily_cap", 403)}
    for attempt in refused:
        assert "the limit is 3 a day" in attempt.sip_reason
        assert "Next allowed:" in attempt.sip_reason, attempt.sip_reason


def test_simultaneous_softphone_calls_to_one_debtor_get_exactly_the_cap(
    product: Product, tmp_path: Path
) -> None:
    """8 agents dial the debtor within one second; 4 worker processes decide them."""
    carrier_log = tmp_path / "carrier.log"
    carrier = _carrier(product.trunk_port, carrier_log)
    log = tmp_path / "agents.log"
    try:
        result = _agents(product, 8, log)
        errors = log.with_suffix(".err")
        assert result.returncode == 0, (errors.read_text() if errors.exists() else "") + (
            product.running.log.read_text()[-3000:]
        )
        booked = _booked(product, 8)
    finally:
        carrier.kill()
        carrier.communicate()
    _assert_refused(booked)
    assert all(a.debtor_id == "D-1" for a in booked), "booked as the debtor's calls"
    outcomes = _outcomes(log)
    assert len(outcomes) == 8, log.read_text()[-3000:]
    through = [port for port, final in outcomes.values() if final == "final 200"]
    warned = [final for _, final in outcomes.values() if final.startswith("final 403")]
    assert len(through) == CAP and len(warned) == 8 - CAP
    assert len(set(through)) >= 2, "the calls that got through ran on different workers"
    for final in warned:
        assert '399 dialguard "daily_cap:' in final and "Next allowed:" in final, final
    assert carrier_log.read_text().count("carrier call") >= CAP
    assert len(re.findall(r"carrier call \d+ from", carrier_log.read_text())) == CAP


def _answering_phone(port: int, calls: int) -> subprocess.Popen[str]:
    return sipp_server("agent_rung.xml", port, "-m", str(calls), "-timeout", "90s")


def test_click_to_call_and_softphone_calls_mixed_get_exactly_the_cap(
    product: Product, tmp_path: Path
) -> None:
    """4 softphone calls and 4 click-to-calls for the same debtor at the same moment."""
    phone_port = free_port(socket.SOCK_DGRAM)
    phone = _answering_phone(phone_port, 4)
    registered = run_sipp(
        "agent_register.xml",
        f"127.0.0.1:{product.sip}",
        "-au",
        "agent1",
        "-ap",
        PASSWORD,
        "-auth_uri",
        f"127.0.0.1:{product.sip}",
        "-key",
        "contact_port",
        str(phone_port),
    )
    assert registered.returncode == 0, registered.stdout[-2000:]
    carrier = _carrier(product.trunk_port, tmp_path / "carrier.log")
    headers = {"Authorization": f"Bearer {product.token}"}
    body = {"agent": "agent1", "number": product.number, "debtor_id": "D-1"}
    log = tmp_path / "agents.log"
    softphones: list[subprocess.CompletedProcess[str]] = []
    dialing = threading.Thread(target=lambda: softphones.append(_agents(product, 4, log)))
    try:
        with httpx.Client(base_url=product.api, headers=headers, timeout=10) as api:
            dialing.start()
            queued = [api.post("/api/v1/calls", json=body) for _ in range(4)]
            assert [q.status_code for q in queued] == [202] * 4, queued[0].text
            dialing.join(90)
            states = []
            for request in queued:
                deadline = time.monotonic() + 60
                while (state := api.get(f"/api/v1/calls/{request.json()['id']}").json())[
                    "status"
                ] in ("queued", "claimed"):
                    assert time.monotonic() < deadline, state
                    time.sleep(0.5)
                states.append(state)
        booked = _booked(product, 8)
    finally:
        for proc in (carrier, phone):
            proc.kill()
            proc.communicate()
    assert softphones and softphones[0].returncode == 0, log.with_suffix(".err").read_text()
    _assert_refused(booked)
    assert {a.debtor_id for a in booked} == {"D-1"}
    clicks_through = [s for s in states if s["status"] == "done"]
    phones_through = [f for _, f in _outcomes(log).values() if f == "final 200"]
    assert len(clicks_through) + len(phones_through) == CAP, (states, _outcomes(log))
    for state in states:
        if state["status"] == "failed":
            assert "daily_cap" in str(state), state

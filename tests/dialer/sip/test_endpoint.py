"""A real pjsua2 endpoint in its own process, talked to by SIPp over loopback."""

from __future__ import annotations

import multiprocessing
import socket
import threading
from collections.abc import Iterator

import pytest

from dialer.errors import SipPortBusy
from dialer.sip.endpoint import SipEndpoint, run_dialer
from dialer.sip.probe import sip_ping, wait_answering
from tests.helpers import free_port, run_sipp, sip_bytes

# Datagrams that are no SIP a stack can read: NULs, a method alone, a status line cut
# short, Chinese text.
JUNK = (
    "nul_1500.bin",
    "invite_method_only.txt",
    "status_line_no_reason.txt",
    "not_sip_chinese.txt",
)


def _serve(port: int, stop: threading.Event) -> None:
    run_dialer("127.0.0.1", port, stop, version="test")


@pytest.fixture(scope="module")
def endpoint_port() -> Iterator[int]:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    port = free_port(socket.SOCK_DGRAM)
    process = ctx.Process(target=_serve, args=(port, stop))
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)  # up once it answers
        yield port
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
    assert process.exitcode == 0, "the endpoint did not shut down cleanly"


def test_options_ping_from_sipp_is_answered(endpoint_port: int) -> None:
    result = run_sipp("options.xml", f"127.0.0.1:{endpoint_port}")
    assert result.returncode == 0, result.stdout[-2000:]


def test_our_probe_sees_dialguard(endpoint_port: int) -> None:
    reply = sip_ping("127.0.0.1", endpoint_port)
    assert (reply.status, reply.user_agent) == (200, "Dialguard/test")


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_invite_is_refused_until_routing_exists(endpoint_port: int, transport: str) -> None:
    """No call may leave unchecked: without a dialer configuration every INVITE gets 503."""
    result = run_sipp("invite_refused.xml", f"127.0.0.1:{endpoint_port}", "-t", transport)
    assert result.returncode == 0, result.stdout[-2000:]


def test_garbage_datagrams_do_not_kill_the_endpoint(endpoint_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in JUNK:
            sock.sendto(sip_bytes(junk), ("127.0.0.1", endpoint_port))
    assert sip_ping("127.0.0.1", endpoint_port).status == 200


def test_busy_port_is_named() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(SipPortBusy, match=f"cannot bind SIP 127.0.0.1:{port}") as busy:
            SipEndpoint("127.0.0.1", port)
    assert "DIALGUARD_SIP_PORT" in busy.value.hint

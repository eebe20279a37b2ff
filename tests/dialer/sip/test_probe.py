"""The SIP OPTIONS probe and port checks, against real sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from dialer.errors import SipUnreachable
from dialer.sip.probe import parse_reply, port_in_use, sip_ping
from tests.helpers import free_port, sip_bytes


@pytest.mark.parametrize(
    ("fixture", "status", "agent"),
    [
        ("options_200_pjsua2.txt", 200, "Dialguard/0.1.0"),
        ("options_200_compact.txt", 200, ""),
    ],
)
def test_parse_reply_reads_real_responses(fixture: str, status: int, agent: str) -> None:
    reply, call_id = parse_reply(sip_bytes(fixture))
    assert (reply.status, reply.user_agent) == (status, agent)
    assert call_id


@pytest.mark.parametrize(
    "fixture", ["garbage.bin", "request_not_response.txt", "truncated_status_line.txt"]
)
def test_parse_reply_refuses_what_is_not_a_response(fixture: str) -> None:
    with pytest.raises(ValueError, match="not a SIP response"):
        parse_reply(sip_bytes(fixture))


def test_ping_of_a_silent_port_fails_within_its_timeout() -> None:
    port = free_port(socket.SOCK_DGRAM)
    started = time.monotonic()
    with pytest.raises(SipUnreachable, match=f"127.0.0.1:{port}"):
        sip_ping("127.0.0.1", port, timeout=1.0)
    assert time.monotonic() - started < 3


def test_ping_ignores_garbage_and_other_calls_before_the_answer() -> None:
    """A peer that first sends noise and a reply to another call is still understood."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    answer = sip_bytes("options_200_pjsua2.txt")

    def serve() -> None:
        request, peer = server.recvfrom(65535)
        call_id = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"call-id:")
        )
        server.sendto(sip_bytes("not_sip_noise.bin"), peer)
        server.sendto(answer, peer)  # right shape, someone else's Call-ID
        server.sendto(answer.replace(b"a84b4c76e66710@pc33.example", call_id), peer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        reply = sip_ping("127.0.0.1", server.getsockname()[1], timeout=3.0)
    finally:
        thread.join(5)
        server.close()
    assert reply.status == 200


def test_port_in_use_names_each_transport() -> None:
    port = free_port(socket.SOCK_DGRAM)
    assert port_in_use("127.0.0.1", port) == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", port))
        assert port_in_use("127.0.0.1", port) == ["udp"]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", port))
            tcp.listen()
            assert port_in_use("127.0.0.1", port) == ["udp", "tcp"]

"""A SIP OPTIONS probe ("SIP ping") over UDP, and port checks.

Health checks ask the SIP stack itself rather than trusting a pid: a process
that is alive but wedged does not answer OPTIONS.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from dialer.errors import SipUnreachable


@dataclass(frozen=True)
class SipReply:
    status: int
    reason: str
    user_agent: str


def options_request(host: str, port: int, local_port: int, call_id: str, branch: str) -> bytes:
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:healthcheck@127.0.0.1>;tag={branch[:10]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def parse_reply(data: bytes) -> tuple[SipReply, str]:
    """(reply, Call-ID) of a SIP response; ValueError for anything else."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        raise ValueError(f"not a SIP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    call_id = headers.get("call-id", headers.get("i", ""))
    agent = headers.get("user-agent", headers.get("server", ""))
    return SipReply(int(parts[1]), parts[2] if len(parts) > 2 else "", agent), call_id


def sip_ping(host: str, port: int, timeout: float = 2.0) -> SipReply:
    """Send OPTIONS and return the final reply; SipUnreachable if none comes."""
    call_id = f"{secrets.token_hex(8)}@dialguard-probe"
    branch = secrets.token_hex(8)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1" if host.startswith("127.") else "", 0))
        request = options_request(host, port, sock.getsockname()[1], call_id, branch)
        attempts = 0
        while (remaining := deadline - time.monotonic()) > 0:
            if attempts < 3:  # UDP may drop; resend like a SIP timer A would
                sock.sendto(request, (host, port))
                attempts += 1
            sock.settimeout(min(remaining, 0.5))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            except ConnectionRefusedError:  # ICMP port unreachable: nothing listens
                break
            try:
                reply, got_id = parse_reply(data)
            except ValueError:
                continue
            if got_id == call_id and reply.status >= 200:
                return reply
    raise SipUnreachable(
        f"no SIP answer from {host}:{port} within {timeout:g} s",
        hint="start Dialguard (dialguard up) or check DIALGUARD_SIP_HOST/PORT",
    )


def wait_answering(host: str, port: int, process: BaseProcess, limit_s: float = 90) -> None:
    """Until a just-started SIP process answers OPTIONS; RuntimeError if it died first.

    A loaded 2-core box can take a long time to import pjsua2 and the rest.
    """
    deadline = time.monotonic() + limit_s
    while True:
        if not process.is_alive():
            raise RuntimeError(f"the B2BUA died at start (exit code {process.exitcode})")
        try:
            sip_ping(host, port, timeout=2.0)
            return
        except SipUnreachable:
            if time.monotonic() > deadline:
                raise


def port_in_use(host: str, port: int) -> list[str]:
    """Which of udp/tcp at host:port another process already holds."""
    busy = []
    for kind, proto in ((socket.SOCK_DGRAM, "udp"), (socket.SOCK_STREAM, "tcp")):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as a server would: TIME_WAIT is not "in use"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(proto)
    return busy

"""The SIP front: authenticates agents and redirects each call to a dialer worker with room.

pjsua2 carries at most 4 call legs a process (2 bridged calls), so calls are
spread over a pool of worker processes. The front is a stateless redirect
server (RFC 3261 §8.3) rather than a proxy: after the 302 it is out of the
call's path, so a front restart drops no call, and it needs no pjsua2.
Kamailio's dispatcher would do the same job; this is chosen because the
front must also see Dialguard's agents and throttle (one place counts every
failed login) and because it installs with the product, nothing to configure.

Why a redirect works with softphones: a 3xx to an INVITE is followed by
every SIP user agent (RFC 3261 §8.1.3.4); the Contact carries a signed,
short-lived token (`dialer/sip/redirect_token.py`) so the worker does not
challenge the agent a second time.
"""

from __future__ import annotations

import logging
import re
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dialer.sip.config import USER_AGENT
from dialer.sip.digest import Algorithm, Credential, FailureThrottle, check_login
from dialer.sip.messages import SipRequest, host_of, parse_request, uri_user
from dialer.sip.redirect_token import PARAM, issue

log = logging.getLogger(__name__)

CALLS_PER_WORKER = 2  # 4 legs per pjsua2 process, 2 legs per bridged call
MAX_EXPIRES = 3600  # a softphone re-registers at least hourly
RESERVE_S = 3.0  # a redirected call counts against its worker until the worker reports it
_ANSWER_CACHE_S = 32.0  # timer B: a retransmitted request gets the same answer
# Softphones that give up on a 401 with two WWW-Authenticate headers ("Function not
# implemented": baresip 1.x, the one Debian 12 ships) and speak MD5 only.
_ONE_CHALLENGE_ONLY = re.compile(r"^baresip v?[01]\.", re.IGNORECASE)


def challenged_algorithms(
    offered: tuple[Algorithm, ...], user_agent: str | None
) -> tuple[Algorithm, ...]:
    """The digest algorithms to challenge this softphone with: the site's, or MD5 alone for
    one that cannot read two challenges and would pick MD5 anyway (no weaker than before).
    """
    if user_agent and _ONE_CHALLENGE_ONLY.match(user_agent) and Algorithm.MD5 in offered:
        return (Algorithm.MD5,)
    return offered


@dataclass(frozen=True)
class FrontConfig:
    host: str
    port: int
    secret: bytes  # signs nonces and redirect tokens; shared with the workers
    realm: str = "dialguard"
    algorithms: tuple[Algorithm, ...] = (Algorithm.MD5, Algorithm.SHA256)
    nonce_lifetime_s: float = 60.0


class WorkerTable:
    """Where each worker listens and how many legs it carries, as the workers report them.

    `ports` and `legs` are sequences shared with the worker processes
    (multiprocessing arrays in production); a port of 0 is a worker not ready.
    """

    def __init__(self, ports: Sequence[int], legs: Sequence[int]) -> None:
        self.ports = ports
        self.legs = legs
        self._reserved: list[list[float]] = [[] for _ in range(len(ports))]

    def _calls(self, i: int, now: float) -> int:
        """Calls worker `i` carries or is about to: its report, or the redirects it has
        not reported yet (a redirected call shows up in the report a moment later, so
        it is counted once, whichever of the two sees it)."""
        self._reserved[i] = [t for t in self._reserved[i] if t > now]
        return max((self.legs[i] + 1) // 2, len(self._reserved[i]))

    def pick(self, now: float) -> int | None:
        """The index of the least loaded ready worker with a free call, or None."""
        ready = [(self._calls(i, now), i) for i in range(len(self.ports)) if self.ports[i]]
        free = [(calls, i) for calls, i in ready if calls < CALLS_PER_WORKER]
        if not free:
            return None
        index = min(free)[1]
        self._reserved[index].append(now + RESERVE_S)
        return index

    def free_calls(self, now: float) -> int:
        return sum(
            max(0, CALLS_PER_WORKER - self._calls(i, now))
            for i in range(len(self.ports))
            if self.ports[i]
        )


@dataclass
class _Answered:
    data: bytes
    until: float


@dataclass
class Front:
    config: FrontConfig
    workers: WorkerTable
    credentials: Callable[[str], Credential | None]
    throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(time.monotonic))
    clock: Callable[[], float] = time.time
    # register(username, contact URI or None to remove, seconds): where to ring an agent.
    register: Callable[[str, str | None, int], None] | None = None
    _answers: dict[tuple[str, str, str], _Answered] = field(default_factory=dict)

    # --- the decision, one request in, one response out ---------------------------------------

    def respond(self, text: str, source: str, transport: str) -> bytes | None:
        """The response to one request, or None for what gets none (ACK, garbage)."""
        try:
            request = parse_request(text)
        except ValueError:
            log.info("front: unreadable message from %s dropped", host_of(source))
            return None
        if request.method == "ACK":
            return None
        key = (
            request.first("call-id") or "",
            request.first("cseq") or "",
            (request.first("via") or "").split("branch=")[-1],
        )
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and cached.until > now:
            return cached.data
        data = self._decide(request, host_of(source), transport)
        self._answers = {k: v for k, v in self._answers.items() if v.until > now}
        self._answers[key] = _Answered(data, now + _ANSWER_CACHE_S)
        return data

    def _decide(self, request: SipRequest, source: str, transport: str) -> bytes:
        if request.method == "OPTIONS":
            return _response(request, 200, "OK", [("Allow", "INVITE, ACK, CANCEL, OPTIONS")])
        if request.method == "CANCEL":  # the INVITE was answered already (302)
            return _response(request, 481, "Call/Transaction Does Not Exist")
        if request.method == "REGISTER" and self.register is not None:
            return self._registration(request, source)
        if request.method != "INVITE":
            allow = "INVITE, OPTIONS" + (", REGISTER" if self.register else "")
            return _response(request, 405, "Method Not Allowed", [("Allow", allow)])
        if not request.first("call-id") or not request.first("via"):
            return _response(request, 400, "Bad Request")
        agent = self._authenticate(request, source, "INVITE")
        if isinstance(agent, bytes):
            return agent
        index = self.workers.pick(time.monotonic())
        if index is None:
            log.warning("front: every dialer worker is busy; agent %s told to retry", agent)
            return _response(
                request, 503, "All Lines Busy", [("Retry-After", "5")], tag=secrets.token_hex(4)
            )
        number = uri_user(request.uri)
        token = issue(
            self.config.secret, agent, number, request.first("call-id") or "", self.clock()
        )
        suffix = ";transport=tcp" if transport == "tcp" else ""
        contact = (
            f"<sip:{number}@{self.config.host}:{self.workers.ports[index]};{PARAM}={token}{suffix}>"
        )
        return _response(request, 302, "Moved Temporarily", [("Contact", contact)])

    def _registration(self, request: SipRequest, source: str) -> bytes:
        """Remember where the agent's softphone is, so click-to-call can ring it."""
        agent = self._authenticate(request, source, "REGISTER")
        if isinstance(agent, bytes):
            return agent
        contact_header = request.first("contact") or ""
        match = re.search(r"<([^>]+)>", contact_header)
        contact = match.group(1) if match else contact_header.split(";")[0].strip()
        wanted = re.search(r";\s*expires=(\d+)", contact_header) or re.search(
            r"^(\d+)$", (request.first("expires") or "").strip()
        )
        expires = min(int(wanted.group(1)), MAX_EXPIRES) if wanted else MAX_EXPIRES
        if contact_header.strip() == "*" or expires == 0:
            assert self.register is not None
            self.register(agent, None, 0)
            return _response(request, 200, "OK")
        if not contact.startswith(("sip:", "sips:")):
            return _response(request, 400, "Bad Contact")
        assert self.register is not None
        self.register(agent, contact, expires)
        log.info("front: %s registered for %d s", agent, expires)
        return _response(request, 200, "OK", [("Contact", f"<{contact}>;expires={expires}")])

    def _authenticate(self, request: SipRequest, source: str, method: str) -> str | bytes:
        """The agent's name, or the 401/403 to send instead."""
        cfg = self.config
        login = check_login(
            request.all("authorization"),
            method=method,
            uri=request.uri,
            source=source,
            realm=cfg.realm,
            secret=cfg.secret,
            algorithms=challenged_algorithms(cfg.algorithms, request.first("user-agent")),
            nonce_lifetime_s=cfg.nonce_lifetime_s,
            credentials=self.credentials,
            throttle=self.throttle,
            now=self.clock(),
        )
        if login.agent is not None:
            return login.agent
        if login.refusal is not None:
            return _response(request, 403, login.refusal)
        return _response(request, 401, "Unauthorized", login.challenge, tag=secrets.token_hex(4))

    # --- the sockets ----------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Answer on UDP and TCP at host:port until `stop` is set."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind((self.config.host, self.config.port))
        tcp.bind((self.config.host, self.config.port))
        tcp.listen(64)
        selector = selectors.DefaultSelector()
        selector.register(udp, selectors.EVENT_READ, "udp")
        selector.register(tcp, selectors.EVENT_READ, "listen")
        buffers: dict[socket.socket, bytes] = {}
        log.info("front: redirecting calls on %s:%d", self.config.host, self.config.port)
        try:
            while not stop.is_set():
                for key, _ in selector.select(0.2):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    if key.data == "udp":
                        data, addr = sock.recvfrom(65535)
                        self._reply_udp(sock, data, addr)
                    elif key.data == "listen":
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        buffers[conn] = b""
                        selector.register(conn, selectors.EVENT_READ, "tcp")
                    else:
                        self._read_tcp(sock, buffers, selector)
        finally:
            for conn in list(buffers):
                conn.close()
            selector.close()
            udp.close()
            tcp.close()

    def _reply_udp(self, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        answer = self.respond(data.decode("utf-8", "replace"), f"{addr[0]}:{addr[1]}", "udp")
        if answer is not None:
            sock.sendto(answer, addr)

    def _read_tcp(
        self,
        conn: socket.socket,
        buffers: dict[socket.socket, bytes],
        selector: selectors.BaseSelector,
    ) -> None:
        try:
            chunk = conn.recv(65535)
        except OSError:
            chunk = b""
        if not chunk or len(buffers[conn]) > 256 * 1024:
            selector.unregister(conn)
            buffers.pop(conn, None)
            conn.close()
            return
        buffers[conn] += chunk
        try:
            peer = conn.getpeername()
            while True:
                message, rest = _split_stream(buffers[conn])
                if message is None:
                    return
                buffers[conn] = rest
                text = message.decode("utf-8", "replace")
                answer = self.respond(text, f"{peer[0]}:{peer[1]}", "tcp")
                if answer is not None:
                    conn.sendall(answer)
        except (OSError, Unframeable) as exc:
            # A peer already gone, or a stream no message boundary can be found in (a
            # negative Content-Length): that connection goes, and the front serves on.
            log.info("front: TCP connection dropped (%s)", type(exc).__name__)
            selector.unregister(conn)
            buffers.pop(conn, None)
            conn.close()


class Unframeable(ValueError):
    """A TCP stream whose next message has no end: RFC 3261 §18.3 frames by Content-Length."""


def _split_stream(buffer: bytes) -> tuple[bytes | None, bytes]:
    """One whole message off a TCP stream (headers, then Content-Length bytes), if there."""
    buffer = buffer.lstrip(b"\r\n")  # keep-alive CRLFs
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None, buffer
    length = 0
    for line in buffer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            try:
                length = int(value.strip())
            except ValueError:
                length = 0
            if length < 0:
                raise Unframeable("negative Content-Length")
    total = end + 4 + length
    if len(buffer) < total:
        return None, buffer
    return buffer[:total], buffer[total:]


def _response(
    request: SipRequest,
    code: int,
    reason: str,
    headers: Sequence[tuple[str, str]] = (),
    tag: str | None = None,
) -> bytes:
    """A response carrying the request's Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6)."""
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {via}" for via in request.all("via")]
    to = request.first("to") or ""
    if ";tag=" not in to:
        to += f";tag={tag or secrets.token_hex(4)}"
    lines += [
        f"From: {request.first('from') or ''}",
        f"To: {to}",
        f"Call-ID: {request.first('call-id') or ''}",
        f"CSeq: {request.first('cseq') or ''}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Server: {USER_AGENT}", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()

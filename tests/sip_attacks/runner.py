"""Throw malformed SIP at any listener (host, port, udp|tcp) and judge how it answered.

Written for every SIP listener Dialguard has, a dialer worker today and the
Kamailio edge next to it, so an edge test is two lines:
``report = run_corpus(host, port, "tcp")`` then ``assert report.ok, report.summary()``.

What counts as a failure, and why:

- a 2xx or 3xx to anything but OPTIONS: an unauthenticated request was
  accepted or redirected somewhere (OPTIONS is answered without a login on
  purpose: it is how health checks and softphones probe);
- any 6xx: a global refusal has no business answering garbage;
- a valid OPTIONS, sent after every 50 cases and at the end, not answered
  within 2 s: one packet that wedges the listener stops every agent's calls
  (RFC 4475's "ncl" over TCP did exactly that to the old front, issue #13).

A 5xx is allowed but recorded (`server_errors`): it is an honest answer, yet
for plain garbage a 4xx or silence is the better one.

Each TCP case goes on a fresh connection, so one case cannot frame the next;
each UDP case on a fresh socket, so a late retransmission of an earlier
answer cannot be taken for this one's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.sip_attacks.corpus import Case, Transport, corpus

#: Where the RFC 4475 messages live: next to the repository, never copied into it.
TORTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "sip-torture" / "rfc4475"
CHECK_EVERY = 50
OPTIONS_TIMEOUT_S = 2.0

_STATUS = re.compile(rb"(?:\A|\n)SIP/2\.0 (\d{3})(?: ([^\r\n]*))?")


class TortureUnavailable(RuntimeError):
    """The RFC 4475 messages are not next to the repository (../shared/sip-torture)."""


@dataclass(frozen=True)
class Outcome:
    case: str
    method: str
    status: int | None  # the final answer, else the last provisional, else None
    reason: str = ""

    @property
    def answer(self) -> str:
        return "none" if self.status is None else f"{self.status // 100}xx"

    @property
    def offending(self) -> bool:
        if self.status is None:
            return False
        klass = self.status // 100
        return klass == 6 or (klass in (2, 3) and self.method != "OPTIONS")


@dataclass
class Report:
    """How one listener answered one batch of cases over one transport."""

    target: str
    transport: Transport
    cases: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    offending: list[Outcome] = field(default_factory=list)
    server_errors: list[Outcome] = field(default_factory=list)
    provisional_only: list[Outcome] = field(default_factory=list)
    options_checks: int = 0
    options_failures: list[str] = field(default_factory=list)  # after which case it went quiet
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.offending and not self.options_failures

    def add(self, outcome: Outcome) -> None:
        self.cases += 1
        self.outcomes.append(outcome)
        self.counts[outcome.answer] += 1
        if outcome.offending:
            self.offending.append(outcome)
        elif outcome.status is not None and outcome.status >= 500:
            self.server_errors.append(outcome)
        elif outcome.status is not None and outcome.status < 200:
            self.provisional_only.append(outcome)

    def summary(self) -> str:
        def names(items: Sequence[Outcome]) -> str:
            return ", ".join(f"{o.case} -> {o.status} {o.reason}" for o in items[:20]) or "-"

        return (
            f"{self.target}/{self.transport}: {self.cases} cases in {self.seconds:.1f} s, "
            f"answers {dict(sorted(self.counts.items()))}; "
            f"OPTIONS answered {self.options_checks - len(self.options_failures)}"
            f"/{self.options_checks}; unanswered after: {self.options_failures[:10] or '-'}; "
            f"offending ({len(self.offending)}): {names(self.offending)}; "
            f"5xx ({len(self.server_errors)}): {names(self.server_errors)}"
        )


# --- one message, one answer ----------------------------------------------------------------


Answer = tuple[int | None, str]  # (status, reason phrase)


def _statuses(data: bytes) -> list[int]:
    return [int(m.group(1)) for m in _STATUS.finditer(data)]


def _verdict(data: bytes) -> Answer:
    """The first final answer in `data`, else its last provisional one, else (None, "")."""
    seen = [(int(m.group(1)), (m.group(2) or b"").decode("utf-8", "replace")) for m in
            _STATUS.finditer(data)]  # fmt: skip
    finals = [a for a in seen if a[0] >= 200]
    if finals:
        return finals[0]
    return seen[-1] if seen else (None, "")


_COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id"}


def ack_for(request: bytes, response: bytes) -> bytes | None:
    """The ACK a real UAC sends for a non-2xx final answer to its INVITE (RFC 3261 17.1.1.3).

    Built from the answer's own Via, From, To, Call-ID and CSeq, so it matches
    the server transaction even when the request was mangled. Without it the
    server keeps the INVITE transaction (and over TCP its connection) for
    Timer H, 32 s: the runner behaves as a softphone, not as a flood.
    """
    head = response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields: dict[bytes, bytes] = {}
    for line in head[1:]:
        name, sep, value = line.partition(b":")
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        if sep and key not in fields:
            fields[key] = value.strip()
    cseq = fields.get(b"cseq", b"").split()
    if (
        len(cseq) != 2
        or cseq[1] != b"INVITE"
        or not all(k in fields for k in (b"via", b"from", b"to", b"call-id"))
    ):
        return None
    parts = request.split(b"\r\n", 1)[0].split(b" ")
    uri = parts[1] if len(parts) == 3 and parts[1] else b"sip:127.0.0.1"
    return b"\r\n".join(
        [
            b"ACK " + uri + b" SIP/2.0",
            b"Via: " + fields[b"via"].split(b",")[0],
            b"Max-Forwards: 70",
            b"From: " + fields[b"from"],
            b"To: " + fields[b"to"],
            b"Call-ID: " + fields[b"call-id"],
            b"CSeq: " + cseq[0] + b" ACK",
            b"Content-Length: 0",
            b"",
            b"",
        ]
    )


def _final_at(data: bytes) -> tuple[int, bytes] | None:
    """The first final answer in `data` and the bytes from its status line on."""
    for m in _STATUS.finditer(data):
        status = int(m.group(1))
        if status >= 200:
            return status, data[m.start() :].lstrip(b"\n")
    return None


def exchange(host: str, port: int, transport: Transport, data: bytes, timeout: float) -> Answer:
    """Send one message; the final answer that came back (or last provisional, or None)."""
    if transport == "udp":
        return _exchange_udp(host, port, data, timeout)
    return _exchange_tcp(host, port, data, timeout)


def _exchange_udp(host: str, port: int, data: bytes, timeout: float) -> Answer:
    heard = b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        try:
            sock.sendto(data, (host, port))
        except OSError:  # too big for a datagram, or refused at once: nothing was heard
            return None, ""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                got = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                break
            heard += got + b"\n"
            final = _final_at(got)
            if final is not None:
                if final[0] >= 300 and (ack := ack_for(data, final[1])) is not None:
                    sock.sendto(ack, (host, port))
                break
    return _verdict(heard)


def _exchange_tcp(host: str, port: int, data: bytes, timeout: float) -> Answer:
    buf = b""
    with socket.create_connection((host, port), timeout=OPTIONS_TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + timeout
        try:
            sock.sendall(data)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                got = sock.recv(65535)
                if not got:  # the listener closed the connection: that is its answer
                    break
                buf += got
                final = _final_at(buf)
                if final is not None:
                    if final[0] >= 300 and (ack := ack_for(data, final[1])) is not None:
                        sock.sendall(ack)
                    break
        except (TimeoutError, ConnectionError):
            pass
    return _verdict(buf)


def options_request(host: str, port: int, transport: Transport, local_port: int) -> bytes:
    tag = secrets.token_hex(6)
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{local_port};branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={tag}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {tag}@sip-attacks\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def options_answered(host: str, port: int, transport: Transport) -> int | None:
    """A valid OPTIONS over `transport`: its final status within 2 s, else None.

    UDP may drop a datagram, so it is sent up to three times inside the 2 s,
    as a SIP client's timer A would.
    """
    deadline = time.monotonic() + OPTIONS_TIMEOUT_S
    if transport == "tcp":
        try:
            with socket.create_connection((host, port), timeout=OPTIONS_TIMEOUT_S) as sock:
                local = sock.getsockname()[1]
                sock.sendall(options_request(host, port, "tcp", local))
                buf = b""
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    got = sock.recv(65535)
                    if not got:
                        break
                    buf += got
                    final = [s for s in _statuses(buf) if s >= 200]
                    if final:
                        return final[0]
        except OSError:
            return None
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        request = options_request(host, port, "udp", sock.getsockname()[1])
        for _attempt in range(3):
            sock.sendto(request, (host, port))
            try_until = min(deadline, time.monotonic() + OPTIONS_TIMEOUT_S / 3)
            while (left := try_until - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    final = [s for s in _statuses(sock.recv(65535)) if s >= 200]
                except (TimeoutError, ConnectionRefusedError):
                    break
                if final:
                    return final[0]
    return None


# --- many messages ---------------------------------------------------------------------------


class _Pace:
    """At most `per_s` starts a second across threads (None: no limit)."""

    def __init__(self, per_s: float | None) -> None:
        self._gap = 1.0 / per_s if per_s else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._gap:
            return
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self._gap
        time.sleep(max(0.0, at - now))


def run_cases(
    host: str,
    port: int,
    transport: Transport,
    cases: Sequence[Case],
    *,
    workers: int = 32,
    timeout: float = 0.2,
    per_s: float | None = None,
) -> Report:
    """Every case that fits `transport`, `workers` at a time, OPTIONS after each 50 and at the end.

    `per_s` caps the messages (for TCP: new connections) a second over all
    threads. A dialer worker needs it: its pjsua2 aborts when about 64 sockets
    are in use at once, and each connection or INVITE offering media holds some
    for a second or two (tests/sip_attacks/test_worker.py). Kamailio needs none.

    A case answered 503 is sent once more on its own after its batch: a worker
    has four call slots, and "busy" would otherwise hide what its parser and
    digest check make of the case.

    ``dgx`` in a case (its Via branch and Call-ID) becomes a tag of this run and
    transport, so the same corpus sent twice is new transactions, not
    retransmissions the listener would answer with an old reply.
    """
    tag = (transport[0] + secrets.token_hex(1)[:2]).encode()
    chosen = [c for c in cases if c.fits(transport)]
    report = Report(f"{host}:{port}", transport)
    started = time.monotonic()
    pace = _Pace(per_s)
    retry = tag.upper()

    def one(case: Case, tag: bytes = tag) -> Outcome:
        data = case.data.replace(b"dgx", tag)
        pace.wait()
        try:
            status, reason = exchange(host, port, transport, data, timeout)
        except OSError:  # connect refused or reset: silence, and the OPTIONS check will tell
            status, reason = None, ""
        return Outcome(case.name, case.method, status, reason)

    with ThreadPoolExecutor(workers, thread_name_prefix="sip-attack") as pool:
        for at in range(0, len(chosen), CHECK_EVERY):
            batch = chosen[at : at + CHECK_EVERY]
            outcomes = list(pool.map(one, batch))
            for case, outcome in zip(batch, outcomes, strict=True):
                # busy with the batch's other calls: once more, alone, as a new transaction
                report.add(one(case, retry) if outcome.status == 503 else outcome)
            report.options_checks += 1
            pace.wait()
            if options_answered(host, port, transport) is None:
                report.options_failures.append(batch[-1].name)
    if not chosen or len(chosen) % CHECK_EVERY:  # the end, when no batch check just made it
        report.options_checks += 1
        if options_answered(host, port, transport) is None:
            report.options_failures.append("(end)")
    report.seconds = time.monotonic() - started
    return report


def run_corpus(host: str, port: int, transport: Transport, *, per_s: float | None = None) -> Report:
    """The generated corpus (tests/sip_attacks/corpus.py) against host:port."""
    return run_cases(host, port, transport, corpus(), per_s=per_s)


def torture_cases(root: Path = TORTURE) -> list[Case]:
    """The RFC 4475 messages byte-exact, checked against their SHA256SUMS.

    TortureUnavailable when they are not there (tests skip with that reason);
    ValueError when one was changed (tests fail: that is not the RFC's message).
    """
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        raise TortureUnavailable(f"RFC 4475 messages not found at {root.resolve()}")
    cases = []
    for line in sums.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        data = (root / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{name} does not match its SHA256SUMS entry")
        cases.append(Case(f"rfc4475/{name.removesuffix('.dat')}", data))
    return cases


def run_torture(
    host: str, port: int, transport: Transport, *, per_s: float | None = None
) -> Report:
    """RFC 4475's messages against host:port, judged as the corpus is.

    Over UDP most of them name a Via host other than ours and no ``rport``,
    so a listener answers to 192.0.2.x, not to us: those read as silence.
    Over TCP the answer comes back on the connection, so run TCP to see them.
    """
    return run_cases(host, port, transport, torture_cases(), per_s=per_s)

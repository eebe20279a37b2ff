"""A deterministic corpus of malformed SIP, built from the project's own fixture messages.

Why generated and seeded rather than stored: a few thousand cases, several of
them 64 KiB, would bloat the repository, and a fixed seed gives every run (and
every failure report) the same bytes under the same name. Each case says what
it tests in its name (``category/what/base``), so an offending answer points at
the rule that was broken.

Every message carries the marker ``dgx000000`` in its Via branch and Call-ID.
`corpus()` numbers it per case (same length, so no Content-Length changes),
and the runner swaps ``dgx`` for a per-transport tag: a case sent over UDP and
then over TCP is two transactions, not a retransmission.

The Via of the base messages carries ``rport`` (RFC 3581): a server answers a
UDP request to the address and port it came from, i.e. to the runner's socket.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from tests.helpers import DATA, sip_bytes, sip_message

Transport = Literal["udp", "tcp"]
Hint = Literal["any", "udp", "tcp"]

SEED = 4475
MARK = b"dgx000000"
MALFORMED = DATA / "sip" / "malformed"
KIB = 1024
#: Larger than any UDP datagram can carry: such cases go over TCP only.
UDP_LIMIT = 65000

_BRANCH = "z9hG4bK-" + MARK.decode() + ";rport"
_CALL_ID = MARK.decode() + "@fuzz.dialguard"
_URI = "sip:13800138000@127.0.0.1"


@dataclass(frozen=True)
class Case:
    """One malformed message: what it tests, its bytes, and the transports it is meant for."""

    name: str
    data: bytes
    transport: Hint = "any"

    @property
    def method(self) -> str:
        """The request line's first token as sent (mutations may change it); leading
        whitespace and NULs, which some parsers skip, are not part of it."""
        words = self.data.lstrip(b" \t\r\n\x00").split(None, 1)
        return words[0].decode("latin-1") if words else ""

    def fits(self, transport: Transport) -> bool:
        return self.transport in ("any", transport)


@dataclass
class Msg:
    """A message taken apart just enough to break it on purpose."""

    start: bytes
    headers: list[bytes]
    body: bytes = b""

    @classmethod
    def parse(cls, raw: bytes) -> Msg:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        return cls(lines[0], lines[1:], body)

    def copy(self) -> Msg:
        return Msg(self.start, list(self.headers), self.body)

    def encode(self, *, fix_length: bool = True) -> bytes:
        headers = list(self.headers)
        if fix_length:
            headers = [h for h in headers if not _is(h, b"content-length")]
            headers.append(b"Content-Length: %d" % len(self.body))
        return b"\r\n".join([self.start, *headers]) + b"\r\n\r\n" + self.body

    def without(self, name: bytes) -> Msg:
        out = self.copy()
        out.headers = [h for h in out.headers if not _is(h, name)]
        return out

    def replaced(self, name: bytes, *lines: bytes) -> Msg:
        """`name` headers replaced by `lines` where the first one stood (appended if none)."""
        out = self.copy()
        at = next((i for i, h in enumerate(out.headers) if _is(h, name)), len(out.headers))
        out.headers = [h for h in out.headers if not _is(h, name)]
        out.headers[at:at] = list(lines)
        return out


def _fit(raw: bytes) -> Hint:
    return "tcp" if len(raw) > UDP_LIMIT else "any"


def _is(line: bytes, name: bytes) -> bool:
    return line.split(b":", 1)[0].strip().lower() == name


def _authorization(**override: str | None) -> bytes:
    """A well-formed digest answer (with a made-up nonce) and any parameter replaced raw."""
    params: dict[str, str | None] = {
        "username": '"agent1"',
        "realm": '"dialguard"',
        "nonce": '"' + "ab12" * 8 + '"',
        "uri": f'"{_URI}"',
        "response": '"' + "0" * 32 + '"',
        "algorithm": "MD5",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": '"0a4f113b"',
        "opaque": '"5ccc069c403ebaf9f0171e9517f40e41"',
    }
    params.update(override)
    return (
        "Authorization: Digest " + ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    ).encode("latin-1")


def bases() -> dict[str, Msg]:
    """The valid messages every mutation starts from, built from tests/data/sip."""
    sdp = (MALFORMED / "offer.sdp").read_bytes()
    fields = {"branch": _BRANCH, "call_id": _CALL_ID}
    invite = Msg.parse(
        sip_message("agent_invite.tmpl", uri=_URI, authorization="", **fields).encode()
    )
    invite.headers[2:2] = [b"Max-Forwards: 70", b"Contact: <sip:agent1@127.0.0.1:5999>"]
    invite.headers.append(b"Content-Type: application/sdp")
    invite.body = sdp
    register = Msg.parse(
        sip_message(
            "agent_register.tmpl",
            authorization="",
            contact="<sip:agent1@127.0.0.1:5999>",
            branch=_BRANCH,
        )
        .replace("reg1@x", _CALL_ID)
        .encode()
    )
    options = Msg.parse(sip_message("malformed/options.tmpl", **fields).encode())
    invite_auth = invite.copy()
    invite_auth.headers.insert(-1, _authorization())
    register_auth = register.copy()
    register_auth.headers.insert(-1, _authorization(uri='"sip:127.0.0.1:5060"'))
    return {
        "invite": invite,
        "invite-auth": invite_auth,
        "register": register,
        "register-auth": register_auth,
        "options": options,
    }


# --- categories ---------------------------------------------------------------------------

_Gen = Iterator[Case]


def _content_length(b: dict[str, Msg]) -> _Gen:
    values = [
        "-999", "-1", "-0", "", " ", "abc", "1e3", "0x10", "+5", "5 5", "5,5", "05",
        "99999999999999999999", "4294967296", "4294967295", "2147483648", "2147483647",
        "18446744073709551616", "\u0663".encode().decode("latin-1"), "0;x=1", "\t7",
    ]  # fmt: skip
    for base in ("invite", "options", "register"):
        msg = b[base]
        for v in values:
            line = b"Content-Length: " + v.encode("latin-1")
            for compact in (False, True):
                use = line.replace(b"Content-Length", b"l") if compact else line
                name = f"content-length/{'l' if compact else 'full'}={v!r}/{base}"
                yield Case(
                    name, msg.replaced(b"content-length", use).encode(fix_length=False), "tcp"
                )
        yield Case(
            f"content-length/missing/{base}",
            msg.without(b"content-length").encode(fix_length=False),
            "tcp",
        )
        n = len(msg.body)
        for a, c in ((n, n + 10), (n + 10, n), (0, n), (n, -1), (-999, n)):
            two = msg.replaced(b"content-length", b"Content-Length: %d" % a, b"l: %d" % c)
            yield Case(f"content-length/two={a},{c}/{base}", two.encode(fix_length=False), "tcp")
        # the RFC 4475 "ncl" shape: a negative length in front of a real body, over TCP
        ncl = msg.copy()
        ncl.body = (MALFORMED / "offer.sdp").read_bytes()
        yield Case(
            f"content-length/ncl-like/{base}",
            ncl.replaced(b"content-length", b"Content-Length: -999").encode(fix_length=False),
            "tcp",
        )


def _body_mismatch(b: dict[str, Msg]) -> _Gen:
    for base in ("invite", "options", "register"):
        msg = b[base]
        body = msg.body or (MALFORMED / "offer.sdp").read_bytes()
        for delta in (-100, -10, -1, 1, 10, 100, 1000, 100000):
            out = msg.copy()
            out.body = body
            line = b"Content-Length: %d" % max(len(body) + delta, 0)
            raw = out.replaced(b"content-length", line).encode(fix_length=False)
            yield Case(f"body/length{delta:+d}/{base}", raw)


def _truncations(b: dict[str, Msg]) -> _Gen:
    for base in ("invite-auth", "register-auth", "options"):
        raw = b[base].encode()
        ends = [i for i in range(len(raw)) if raw.startswith(b"\r\n", i)]
        for n, at in enumerate(ends):
            start = ends[n - 1] + 2 if n else 0
            for what, cut in (
                ("before-crlf", at),
                ("after-cr", at + 1),
                ("after-crlf", at + 2),
                ("mid-line", (start + at) // 2),
            ):
                if 0 < cut < len(raw):
                    yield Case(f"truncated/line{n}-{what}/{base}", raw[:cut])


def _oversize(b: dict[str, Msg]) -> _Gen:
    for size in (1 * KIB, 8 * KIB, 16 * KIB, 64 * KIB):
        big = b"a" * size
        for base in ("invite", "register"):
            msg = b[base]
            variants: dict[str, bytes] = {
                "header-value": msg.replaced(b"x-big", b"X-Big: " + big).encode(),
                "header-name": msg.replaced(b"x-big", big + b": 1").encode(),
                "request-uri": Msg(
                    msg.start.replace(b"sip:", b"sip:" + big, 1), msg.headers, msg.body
                ).encode(),
                "method": Msg(
                    big + b" " + msg.start.split(b" ", 1)[1], msg.headers, msg.body
                ).encode(),
                "call-id": msg.replaced(b"call-id", b"Call-ID: " + big).encode(),
                "via-branch": msg.replaced(
                    b"via", b"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK" + big
                ).encode(),
                "from-display": msg.replaced(
                    b"from", b'From: "' + big + b'" <sip:agent1@127.0.0.1>;tag=1'
                ).encode(),
                "line-no-crlf": msg.start + b"\r\nX-Big: " + big,
                "body": Msg(msg.start, msg.headers, big).encode(),
                "auth-response": msg.replaced(
                    b"authorization", _authorization(response='"' + "f" * size + '"')
                ).encode(),
            }
            for what, raw in variants.items():
                yield Case(f"oversize/{what}-{size // KIB}k/{base}", raw, _fit(raw))


def _many_headers(b: dict[str, Msg]) -> _Gen:
    lines: dict[str, Callable[[int], bytes]] = {
        "x-header": lambda i: b"X-H%d: v" % i,
        "via": lambda i: b"Via: SIP/2.0/UDP 10.0.%d.%d;branch=z9hG4bK%d" % (i // 250, i % 250, i),
        "route": lambda i: b"Route: <sip:10.0.0.%d;lr>" % (i % 250),
        "contact": lambda i: b"Contact: <sip:u%d@127.0.0.1>" % i,
        "authorization": lambda i: _authorization(nonce=f'"{i}"'),
        "empty-name": lambda i: b": %d" % i,
    }
    for count in (100, 1000, 3000, 10000):
        for what, make in lines.items():
            for base in ("invite", "register"):
                msg = b[base].copy()
                msg.headers[1:1] = [make(i) for i in range(count)]
                raw = msg.encode()
                yield Case(f"many-headers/{what}x{count}/{base}", raw, _fit(raw))


def _digest(b: dict[str, Msg]) -> _Gen:
    huge = "f" * (64 * KIB)
    per_param: dict[str, str | None] = {
        "missing": None,
        "empty": '""',
        "unquoted": "agent1 x",
        "unterminated": '"agent1',
        "quote-in-middle": '"ag"ent1"',
        "backslash-end": '"agent1\\"',
        "crlf": '"agent1\r\nVia: SIP/2.0/UDP evil"',
        "nul": '"agent1\x00admin"',
        "non-utf8": '"\xff\xfe\xc3\x28"',
        "huge": '"' + huge + '"',
        "8k": '"' + "z" * (8 * KIB) + '"',
        "comma": '","',
        "equals": "==",
    }
    params = ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc",
              "cnonce", "opaque"]  # fmt: skip
    specific: dict[str, bytes] = {
        "algorithm=foo": _authorization(algorithm="foo"),
        "algorithm=MD5-sess": _authorization(algorithm="MD5-sess"),
        "algorithm=SHA-512-256": _authorization(algorithm="SHA-512-256"),
        "algorithm=quoted": _authorization(algorithm='"SHA-256"'),
        "qop=auth-int": _authorization(qop="auth-int"),
        "qop=foo": _authorization(qop="foo"),
        "qop=list": _authorization(qop='"auth,auth-int"'),
        "qop-without-cnonce": _authorization(cnonce=None),
        "qop-without-nc": _authorization(nc=None),
        "nc=zzzz": _authorization(nc="zzzzzzzz"),
        "nc=-1": _authorization(nc="-1"),
        "nc=huge": _authorization(nc="9" * 40),
        "nc=0": _authorization(nc="00000000"),
        "response=non-hex": _authorization(response='"' + "zz" * 16 + '"'),
        "response=short": _authorization(response='"abc"'),
        "response=64-hex": _authorization(response='"' + "0" * 64 + '"'),
        "username=agent1-crlf-inject": _authorization(username='"agent1"\r\n"'),
        "username=escaped-quote": _authorization(username='"agent\\"1"'),
        "username=sql": _authorization(username="\"agent1' OR '1'='1\""),
        "username=percent": _authorization(username='"%s%s%n%x"'),
        "username=unknown": _authorization(username='"nobody"'),
        "realm=other": _authorization(realm='"asterisk"'),
        "uri=other": _authorization(uri='"sip:evil@192.0.2.1"'),
        "dup-username": _authorization() + b', username="admin"',
        "dup-response": _authorization() + b', response="' + b"1" * 32 + b'"',
        "params-x1000": _authorization() + b"".join(b", p%d=x" % i for i in range(1000)),
        "commas-only": b"Authorization: Digest ,,,,,,,,",
        "scheme-only": b"Authorization: Digest",
        "scheme-lowercase": _authorization().replace(b"Digest", b"digest"),
        "scheme-basic": b"Authorization: Basic YWdlbnQxOnNlY3JldA==",
        "scheme-none": _authorization().replace(b"Digest ", b""),
        "scheme-bearer": b"Authorization: Bearer eyJhbGciOiJub25lIn0.e30.",
        "empty-header": b"Authorization:",
        "no-space-after-scheme": _authorization().replace(b"Digest ", b"Digest"),
        "semicolons": _authorization().replace(b", ", b"; "),
        "folded": _authorization().replace(b", realm", b",\r\n realm"),
        "two-headers": _authorization() + b"\r\n" + _authorization(username='"admin"'),
        "proxy-authorization": _authorization().replace(b"Authorization", b"Proxy-Authorization"),
        "nul-in-name": _authorization().replace(b"Authorization", b"Author\x00ization"),
    }
    for base in ("invite-auth", "register-auth"):
        msg = b[base]
        for param in params:
            for what, value in per_param.items():
                line = _authorization(**{param: value})
                raw = msg.replaced(b"authorization", line).encode()
                yield Case(f"digest/{param}-{what}/{base}", raw, _fit(raw))
        for what, line in specific.items():
            raw = msg.replaced(b"authorization", line).encode()
            yield Case(f"digest/{what}/{base}", raw)


def _request_line(b: dict[str, Msg]) -> _Gen:
    methods = ["", "INVITE\x00", "INV ITE", "invite", "Invite", "I" * 2000, "\xff\xfeINVITE",
               "ACK", "BYE", "CANCEL", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
               "INFO", "UPDATE", "PUBLISH", "FOO", "GET", "*", "INVITE;x", "1NVITE"]  # fmt: skip
    uris = ["", "sip:", "sip:@", "<sip:1@127.0.0.1>", "sips:13800138000@127.0.0.1",
            "tel:+8613800138000", "sip:1@[::1", "sip:1@127.0.0.1:99999", "sip:1@127.0.0.1:-1",
            "http://127.0.0.1/", "sip:%00@127.0.0.1", "sip:" + "9" * 8000 + "@127.0.0.1",
            "sip:1@127.0.0.1;transport=", "*", "sip:1@127.0.0.1?Route=%3Csip:evil%3E",
            "sip:1@127.0.0.1 extra", "sip:\xff\xfe@127.0.0.1", "sip:1@", "sip:1@:5060",
            "sip:13800138000@127.0.0.1;user=phone;" + "p=x;" * 500]  # fmt: skip
    versions = ["SIP/2.0", "SIP/3.0", "SIP/1.0", "SIP/2", "SIP/", "HTTP/1.1", "sip/2.0",
                "SIP/2.0 extra", "", "SIP/20", "SIP/2.0\x00", "SIP/7.0", "SIP/2.0/UDP"]  # fmt: skip
    for base in ("invite", "register", "options"):
        msg = b[base]
        method, uri, version = msg.start.decode().split(" ")
        for m in methods:
            start = f"{m} {uri} {version}".encode("latin-1")
            yield Case(
                f"request-line/method={m[:20]!r}/{base}", Msg(start, msg.headers, msg.body).encode()
            )
        for u in uris:
            start = f"{method} {u} {version}".encode("latin-1")
            yield Case(
                f"request-line/uri={u[:30]!r}/{base}", Msg(start, msg.headers, msg.body).encode()
            )
        for v in versions:
            start = f"{method} {uri} {v}".encode("latin-1")
            yield Case(
                f"request-line/version={v!r}/{base}", Msg(start, msg.headers, msg.body).encode()
            )
        # an instant message needs no call: it must not be taken from a stranger either
        text = Msg(f"MESSAGE {uri} {version}".encode(), msg.headers, b"pay now or else")
        text = text.replaced(b"content-type", b"Content-Type: text/plain")
        text = text.replaced(b"cseq", b"CSeq: 1 MESSAGE")
        yield Case(f"request-line/message-text-plain/{base}", text.encode())
        for what, start in (
            ("tabs", msg.start.replace(b" ", b"\t")),
            ("double-spaces", msg.start.replace(b" ", b"  ")),
            ("leading-space", b" " + msg.start),
            ("leading-crlf", b"\r\n\r\n" + msg.start),
            ("trailing-space", msg.start + b" "),
            ("lf-only", msg.start),
            ("empty", b""),
        ):
            raw = Msg(start, msg.headers, msg.body).encode()
            if what == "lf-only":
                raw = raw.replace(b"\r\n", b"\n")
            yield Case(f"request-line/{what}/{base}", raw)


def _headers(b: dict[str, Msg]) -> _Gen:
    per_header: dict[bytes, list[tuple[str, list[bytes]]]] = {
        b"via": [
            ("missing", []),
            ("empty", [b"Via:"]),
            ("no-branch", [b"Via: SIP/2.0/UDP 127.0.0.1:5999;rport"]),
            ("branch-empty", [b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=;rport"]),
            ("bad-protocol", [b"Via: SIP/2.0/FOO 127.0.0.1:5999;branch=z9hG4bK1;rport"]),
            ("bad-version", [b"Via: SIP/3.0/UDP 127.0.0.1:5999;branch=z9hG4bK1;rport"]),
            ("no-host", [b"Via: SIP/2.0/UDP ;branch=z9hG4bK1;rport"]),
            ("port-0", [b"Via: SIP/2.0/UDP 127.0.0.1:0;branch=z9hG4bK1;rport"]),
            ("port-65536", [b"Via: SIP/2.0/UDP 127.0.0.1:65536;branch=z9hG4bK1;rport"]),
            ("port-negative", [b"Via: SIP/2.0/UDP 127.0.0.1:-1;branch=z9hG4bK1;rport"]),
            ("ipv6-unbalanced", [b"Via: SIP/2.0/UDP [::1:5999;branch=z9hG4bK1;rport"]),
            ("rport-garbage", [b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1;rport=abc"]),
            ("received-garbage", [b"Via: SIP/2.0/UDP 127.0.0.1;received=999.1.1.1;rport"]),
            ("ttl-999", [b"Via: SIP/2.0/UDP 127.0.0.1;ttl=999;maddr=224.0.1.75;rport"]),
            ("maddr-broadcast", [b"Via: SIP/2.0/UDP 127.0.0.1;maddr=255.255.255.255;rport"]),
            ("params-x500", [b"Via: SIP/2.0/UDP 127.0.0.1;rport" + b";p=1" * 500]),
            (
                "comma-list-x200",
                [
                    b"Via: "
                    + b", ".join(
                        b"SIP/2.0/UDP 10.0.0.%d;branch=z9hG4bK%d" % (i % 250, i) for i in range(200)
                    )
                ],
            ),
            ("only-commas", [b"Via: ,,,,,"]),
            ("host-garbage", [b"Via: SIP/2.0/UDP \xff\xfe\x00;branch=z9hG4bK1;rport"]),
        ],
        b"cseq": [
            ("missing", []),
            ("empty", [b"CSeq:"]),
            ("non-numeric", [b"CSeq: abc INVITE"]),
            ("negative", [b"CSeq: -1 INVITE"]),
            ("2^32", [b"CSeq: 4294967296 INVITE"]),
            ("huge", [b"CSeq: 99999999999999999999 INVITE"]),
            ("no-method", [b"CSeq: 1"]),
            ("method-mismatch", [b"CSeq: 1 BYE"]),
            ("extra-token", [b"CSeq: 1 INVITE extra"]),
            ("two", [b"CSeq: 1 INVITE", b"CSeq: 2 INVITE"]),
            ("method-only", [b"CSeq: INVITE"]),
            ("float", [b"CSeq: 1.5 INVITE"]),
        ],
        b"call-id": [
            ("missing", []),
            ("empty", [b"Call-ID:"]),
            ("spaces", [b"Call-ID: a b c"]),
            ("nul", [b"Call-ID: abc\x00def"]),
            ("two", [b"Call-ID: a@b", b"Call-ID: c@d"]),
            ("non-utf8", [b"Call-ID: \xff\xfe\xfd"]),
            ("compact-and-full", [b"Call-ID: a@b", b"i: c@d"]),
        ],
        b"max-forwards": [
            ("zero", [b"Max-Forwards: 0"]),
            ("negative", [b"Max-Forwards: -1"]),
            ("non-numeric", [b"Max-Forwards: abc"]),
            ("256", [b"Max-Forwards: 256"]),
            ("huge", [b"Max-Forwards: 99999999999999"]),
            ("empty", [b"Max-Forwards:"]),
            ("two", [b"Max-Forwards: 70", b"Max-Forwards: 0"]),
        ],
        b"from": [
            ("missing", []),
            ("no-tag", [b"From: <sip:agent1@127.0.0.1>"]),
            ("bad-uri", [b"From: <not a uri>;tag=1"]),
            ("unbalanced", [b"From: <sip:agent1@127.0.0.1;tag=1"]),
            ("two", [b"From: <sip:a@b>;tag=1", b"From: <sip:c@d>;tag=2"]),
            ("quote-unbalanced", [b'From: "agent <sip:agent1@127.0.0.1>;tag=1']),
        ],
        b"to": [
            ("missing", []),
            ("bad-uri", [b"To: <:::>"]),
            ("with-tag", [b"To: <sip:1@127.0.0.1>;tag=out-of-dialog"]),
            ("unbalanced", [b"To: sip:1@127.0.0.1>"]),
        ],
        b"contact": [
            ("star", [b"Contact: *"]),
            ("bad-uri", [b"Contact: <sip:@@@>"]),
            ("expires-huge", [b"Contact: <sip:agent1@127.0.0.1>;expires=99999999999999"]),
            ("unbalanced", [b"Contact: <sip:agent1@127.0.0.1"]),
        ],
        b"content-type": [
            ("garbage", [b"Content-Type: ;;;/"]),
            ("multipart-no-boundary", [b"Content-Type: multipart/mixed"]),
            ("huge-params", [b"Content-Type: application/sdp" + b";a=b" * 500]),
        ],
    }
    for base in ("invite", "register", "options"):
        msg = b[base]
        for header, variants in per_header.items():
            for what, lines in variants:
                raw = msg.replaced(header, *lines).encode()
                yield Case(f"header/{header.decode()}-{what}/{base}", raw)
        for what, line in (
            ("no-colon", b"Subject hello"),
            ("space-before-colon", b"Subject : x"),
            ("leading-fold", b" folded-first"),
            ("bare-cr", b"Subject: a\rb"),
            ("bare-lf", b"Subject: a\nb"),
            ("high-bytes-name", b"\xfe\xff: x"),
        ):
            out = msg.copy()
            out.headers.insert(0, line)
            yield Case(f"header/line-{what}/{base}", out.encode())


def _bytes(b: dict[str, Msg]) -> _Gen:
    for base in ("invite-auth", "register", "options"):
        raw = b[base].encode()
        head = raw.split(b"\r\n\r\n", 1)[0]
        starts = [0] + [i + 2 for i in range(len(head)) if head.startswith(b"\r\n", i)]
        for n, at in enumerate(starts):
            for what, junk in (("nul", b"\x00"), ("ff", b"\xff"), ("c0af", b"\xc0\xaf")):
                yield Case(f"bytes/{what}-at-line{n}/{base}", raw[:at] + junk + raw[at:])
        for what, enc in (
            ("utf16", raw.decode("latin-1").encode("utf-16")),
            ("utf8-bom", b"\xef\xbb\xbf" + raw),
            ("nul-every-byte", bytes(x for c in raw for x in (c, 0))),
            ("high-bit-set", bytes(c | 0x80 for c in raw)),
            ("trailing-nuls", raw + b"\x00" * 1400),
            ("nul-in-body", raw.replace(b"\r\n\r\n", b"\r\n\r\n\x00", 1)),
            ("latin1-display", raw.replace(b"<sip:", "\xe9\xe8 <sip:".encode("latin-1"), 1)),
        ):
            yield Case(f"bytes/{what}/{base}", enc)


def _garbage(rng: random.Random) -> _Gen:
    for size in (1, 2, 4, 10, 100, 1000, 1400, 4000, 16000, 65000, 200000):
        for n in range(8):
            raw = rng.randbytes(size)
            yield Case(f"garbage/random-{size}b-{n}", raw, _fit(raw))
    fixed = {
        "crlf": b"\r\n",
        "crlfcrlf": b"\r\n\r\n",
        "crlf-x1000": b"\r\n" * 1000,
        "sip-only": b"SIP/2.0",
        "http-get": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "tls-client-hello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 160,
        "stun-binding": bytes.fromhex("000100002112a442") + b"\x01" * 12,
        "rtp": bytes.fromhex("8008000100000001deadbeef") + b"\xd5" * 160,
        "nul-x1500": b"\x00" * 1500,
        "ff-x1500": b"\xff" * 1500,
        "spaces": b" " * 1400,
        "colons": b":" * 1400,
        "response-200": b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        "response-bigcode": b"SIP/2.0 4294967301 x\r\nCall-ID: x\r\n\r\n",
    }
    for what, raw in fixed.items():
        yield Case(f"garbage/{what}", raw)


def _fixtures() -> _Gen:
    """The broken messages the project already keeps (tests/data/sip), sent as stored."""
    for path in sorted((DATA / "sip").glob("*")):
        if path.is_file() and path.suffix in (".txt", ".bin"):
            yield Case(f"fixture/{path.name}", sip_bytes(path.name))


def _mutations(b: dict[str, Msg], rng: random.Random, per_base: int) -> _Gen:
    ops: list[tuple[str, Callable[[bytearray], None]]] = []

    def flip(data: bytearray) -> None:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)

    def delete(data: bytearray) -> None:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 64)]

    def duplicate(data: bytearray) -> None:
        at = rng.randrange(len(data))
        chunk = data[at : at + rng.randint(1, 128)]
        data[at:at] = chunk * rng.randint(1, 20)

    def insert(data: bytearray) -> None:
        at = rng.randrange(len(data))
        data[at:at] = rng.choice([b"\r\n", b":", b";", b"<", b">", b'"', b"\x00", b" ", b","]) * (
            rng.randint(1, 30)
        )

    def shuffle_lines(data: bytearray) -> None:
        head, sep, body = bytes(data).partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        rest = lines[1:]
        rng.shuffle(rest)
        data[:] = b"\r\n".join([lines[0], *rest]) + sep + body

    ops = [("flip", flip), ("delete", delete), ("duplicate", duplicate), ("insert", insert),
           ("shuffle", shuffle_lines)]  # fmt: skip
    for base in ("invite", "invite-auth", "register", "register-auth", "options"):
        raw = b[base].encode()
        for n in range(per_base):
            data = bytearray(raw)
            names = []
            for _ in range(rng.randint(1, 3)):
                name, op = rng.choice(ops)
                op(data)
                names.append(name)
                if not data:
                    data = bytearray(b"\x00")
            yield Case(f"mutation/{'+'.join(names)}-{n}/{base}", bytes(data))


def corpus(seed: int = SEED, mutations_per_base: int = 200) -> list[Case]:
    """Every case, in a fixed order; the same seed gives the same bytes."""
    rng = random.Random(seed)
    b = bases()
    cases: list[Case] = []
    for gen in (
        _content_length(b),
        _body_mismatch(b),
        _truncations(b),
        _oversize(b),
        _many_headers(b),
        _digest(b),
        _request_line(b),
        _headers(b),
        _bytes(b),
        _garbage(rng),
        _fixtures(),
        _mutations(b, rng, mutations_per_base),
    ):
        cases.extend(gen)
    return [
        Case(c.name, c.data.replace(MARK, b"dgx%06d" % i), c.transport) for i, c in enumerate(cases)
    ]

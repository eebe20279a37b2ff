"""A small SIP user agent for the edge tests: digest REGISTER and INVITE over UDP, TCP, TLS.

It speaks just enough SIP to see exactly what the edge answers (byte for
byte, for the enumeration test) and to log in from a chosen source address
(127.0.0.x), which SIPp and baresip cannot both do on every transport.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    reason: str
    raw: bytes
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def all(self, name: str) -> list[str]:
        """Every value of a header that may repeat (Record-Route), in order."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        values: list[str] = []
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                values.extend(v.strip() for v in value.split(","))
        return values


def _parse(data: bytes) -> Reply:
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Reply(int(parts[1]), parts[2] if len(parts) > 2 else "", data, headers)


def _h(text: str, algorithm: str) -> str:
    name = "sha256" if algorithm == "SHA-256" else "md5"
    return hashlib.new(name, text.encode()).hexdigest()


def authorization(
    challenge: str, user: str, realm: str, password: str, method: str, uri: str
) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    algorithm = params.get("algorithm", "MD5")
    nonce = params["nonce"]
    ha1 = _h(f"{user}:{params.get('realm', realm)}:{password}", algorithm)
    ha2 = _h(f"{method}:{uri}", algorithm)
    cnonce = secrets.token_hex(8)
    if "qop" in params:
        response = _h(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}", algorithm)
        extra = f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:
        response = _h(f"{ha1}:{nonce}:{ha2}", algorithm)
        extra = ""
    return (
        f'Digest username="{user}", realm="{params.get("realm", realm)}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}", algorithm={algorithm}{extra}'
    )


@dataclass
class Agent:
    """One softphone: its transport, source address and login."""

    host: str
    port: int
    user: str
    password: str
    transport: str = "udp"  # udp, tcp or tls
    source: str = "127.0.0.1"
    realm: str = "dialguard"
    timeout: float = 3.0
    _sock: socket.socket | None = field(default=None, repr=False)
    _buffer: bytes = field(default=b"", repr=False)

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self.transport == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.source, 0))
            sock.connect((self.host, self.port))
        else:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.bind((self.source, 0))
            raw.settimeout(self.timeout)
            raw.connect((self.host, self.port))
            sock = raw
            if self.transport == "tls":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(raw)
        sock.settimeout(self.timeout)
        self._sock = sock
        return sock

    @property
    def local(self) -> tuple[str, int]:
        name = self._connect().getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, data: bytes) -> None:
        self._connect().send(data)

    def receive(self) -> Reply | None:
        """The next final-or-provisional reply, None when nothing comes in time."""
        sock = self._connect()
        try:
            if self.transport == "udp":
                return _parse(sock.recv(65535))
            while True:
                head, sep, rest = self._buffer.partition(b"\r\n\r\n")
                if sep:
                    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                    if len(rest) >= length:
                        self._buffer = rest[length:]
                        return _parse(head + sep + rest[:length])
                chunk = sock.recv(65535)
                if not chunk:
                    return None
                self._buffer += chunk
        except TimeoutError:
            return None

    def final(self) -> Reply | None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self.receive()
            if reply is None or reply.status >= 200:
                return reply
        return None

    def request(
        self,
        method: str,
        uri: str,
        call_id: str,
        cseq: int,
        auth: str | None = None,
        to_user: str | None = None,
        extra: str = "",
        body: str = "",
    ) -> bytes:
        local_host, local_port = self.local
        via = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[self.transport]
        to = to_user or self.user
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{via} {local_host}:{local_port}"
            f";branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.realm}>;tag={call_id[:8]}",
            f"To: <sip:{to}@{self.realm}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{local_host}:{local_port};transport={self.transport}>",
            "User-Agent: dialguard-test",
        ]
        if method == "REGISTER":
            lines.append("Expires: 300")
        if auth:
            header = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
            lines.append(f"{header}: {auth}")
        if extra:
            lines.append(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def register(self, password: str | None = None) -> Reply | None:
        """REGISTER, answer the challenge with `password` (default: ours); the last reply."""
        uri = f"sip:{self.realm}"
        call_id = secrets.token_hex(10)
        self.send(self.request("REGISTER", uri, call_id, 1))
        first = self.final()
        if first is None or first.status != 401:
            return first
        challenge = first.header("www-authenticate") or ""
        auth = authorization(
            challenge, self.user, self.realm, password or self.password, "REGISTER", uri
        )
        self.send(self.request("REGISTER", uri, call_id, 2, auth=auth))
        return self.final()

    def call(self, number: str = "13800138000", hold_s: float = 0.2) -> Reply | None:
        """INVITE through the edge, answer its 407, and on 200 ACK and BYE; the INVITE's
        final reply (the BYE's is checked: a call that cannot be ended fails here)."""
        uri = f"sip:{number}@{self.realm}"
        call_id = secrets.token_hex(10)
        sdp = (
            "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        )
        self.send(self.request("INVITE", uri, call_id, 1, to_user=number, body=sdp))
        first = self.final()
        if first is None or first.status != 407:
            return first
        self.send(self._ack(uri, call_id, 1, number, first, []))
        challenge = first.header("proxy-authenticate") or ""
        auth = authorization(challenge, self.user, self.realm, self.password, "INVITE", uri)
        self.send(self.request("INVITE", uri, call_id, 2, auth=auth, to_user=number, body=sdp))
        answer = self.final()
        if answer is None or answer.status != 200:
            return answer
        routes = list(reversed(answer.all("record-route")))
        target = re.search(r"<([^>]+)>", answer.header("contact") or "")
        remote = target.group(1) if target else uri
        self.send(self._ack(remote, call_id, 2, number, answer, routes))
        time.sleep(hold_s)
        bye = self.request("BYE", remote, call_id, 3, to_user=number).decode()
        bye = self._dialog(bye, answer, routes)
        self.send(bye.encode())
        ended = self.final()
        if ended is None or ended.status != 200:
            raise AssertionError(f"BYE through the edge: {ended.status if ended else 'no answer'}")
        return answer

    def _dialog(self, text: str, reply: Reply, routes: list[str]) -> str:
        to = reply.header("to") or ""
        head, _, rest = text.partition("\r\n")
        lines = [line if not line.startswith("To:") else f"To: {to}" for line in rest.split("\r\n")]
        route = [f"Route: {r}" for r in routes]
        return head + "\r\n" + "\r\n".join(route + lines)

    def _ack(
        self, uri: str, call_id: str, cseq: int, number: str, reply: Reply, routes: list[str]
    ) -> bytes:
        text = self.request("ACK", uri, call_id, cseq, to_user=number).decode()
        if reply.status == 200:
            return self._dialog(text, reply, routes).encode()
        # the ACK of a failure reply is part of the INVITE transaction: same branch
        via = reply.header("via") or ""
        text = re.sub(r"(?m)^Via: .*$", lambda _: f"Via: {via}", text, count=1)
        to = reply.header("to") or ""
        return re.sub(r"(?m)^To: .*$", lambda _: f"To: {to}", text, count=1).encode()

"""Just enough SIP message reading for what pjsua2 does not hand us parsed.

pjsua2's OnIncomingCallParam gives the raw INVITE (``rdata.wholeMsg``) but no
typed access to the Request-URI or the Authorization header, which digest
authentication needs byte-exact; this reads them from the text.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 3261 §7.3.3 compact forms of the headers we read.
_COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "m": "contact",
    "v": "via",
    "l": "content-length",
}


@dataclass(frozen=True)
class SipRequest:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value) in message order

    def all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k == key]

    def first(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None


def parse_request(text: str) -> SipRequest:
    """The request line and headers (folded lines joined); ValueError if not a request."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    parts = lines[0].strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("SIP/"):
        raise ValueError(f"not a SIP request line: {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # continuation of the previous header
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    return SipRequest(parts[0], parts[1], tuple(headers))


def uri_user(uri: str) -> str:
    """The user part of a sip:/sips:/tel: URI, without parameters: what the agent dialed."""
    _, _, rest = uri.partition(":")
    user = rest.split("@", 1)[0] if "@" in rest else rest
    return user.split(";", 1)[0].split("?", 1)[0]


def host_of(address: str) -> str:
    """'127.0.0.1:5070' or '[::1]:5070' to the bare host: throttling is per host, not port."""
    if address.startswith("["):
        return address[1 : address.find("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address

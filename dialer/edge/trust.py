"""How a dialer worker knows an INVITE was authenticated by the Kamailio edge.

The edge checks the agent's digest, strips any `X-Dialguard-*` header a
client sent, and adds the agent's name and a mark over the Call-ID. A
worker behind an edge takes calls only from the edge's addresses and only
with a valid mark: a source the edge banned gains nothing by finding a
worker port, and a worker never asks for a password itself.

The mark is what Kamailio can compute with its transformations alone
(`$(var(d){s.sha256})`), so it is a keyed hash, not an HMAC: the secret
is on both ends of the hashed text, which closes the length-extension
door a prefix-only key would leave open. Pure: time is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

AGENT_HEADER = "X-Dialguard-Agent"
MARK_HEADER = "X-Dialguard-Edge"
TRANSPORT_HEADER = "X-Dialguard-Transport"
#: Every header the edge removes from what a client sent before adding its own.
HEADER_PREFIX = "X-Dialguard-"
#: Long enough for an INVITE the edge forwarded to be retransmitted and failed over to
#: the next worker (Timer B is 32 s), short enough that a captured mark soon expires.
MAX_AGE_S = 32

_MARK = re.compile(r"^(\d{1,12});([0-9a-f]{64})$")


@dataclass(frozen=True)
class EdgeTrust:
    """What a worker behind an edge needs: the shared secret and where the edge is.

    `addresses` are the IP addresses the edge sends from (every edge host);
    `proxy` ("host:port") is where the worker sends a click-to-call INVITE for
    the edge to find the agent's softphone.
    """

    secret: str = field(repr=False)
    addresses: frozenset[str]
    proxy: str

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the edge secret is empty")
        if not self.addresses:
            raise ValueError("no edge address: the worker would take no call")


def _digest(secret: str, ts: int, call_id: str, agent: str) -> str:
    return hashlib.sha256(f"{secret}|{ts}|{call_id}|{agent}|{secret}".encode()).hexdigest()


def mark(secret: str, ts: int, call_id: str, agent: str) -> str:
    """The `X-Dialguard-Edge` value for a call: `<ts>;<hex sha256>`."""
    return f"{ts};{_digest(secret, ts, call_id, agent)}"


def verify(
    secret: str,
    header: str | None,
    call_id: str,
    agent: str | None,
    now: float,
    max_age_s: float = MAX_AGE_S,
) -> bool:
    """Whether `header` is the edge's mark for this Call-ID and agent, made within
    `max_age_s` of `now` (either side: the edge's clock may run a little ahead)."""
    if not header or not agent or not call_id:
        return False
    found = _MARK.match(header.strip())
    if found is None:
        return False
    ts = int(found.group(1))
    if abs(now - ts) > max_age_s:
        return False
    return hmac.compare_digest(_digest(secret, ts, call_id, agent), found.group(2))

"""Who a request comes from, when a reverse proxy stands in front of Dialguard.

The login limits and the audit log count failures by source address. Behind
a proxy every request's peer is the proxy, so all users would share one
source (and one stranger's guesses would slow everyone); but X-Forwarded-For
is written by whoever sends the request, so believing it from anyone lets
an attacker pick a fresh source for every guess and escape the per-source
limit. So the header is read only when the peer is a proxy the operator
named (DIALGUARD_TRUSTED_PROXIES), and then from the right: each proxy
appends the address it was reached from, so the right-most address that is
not itself a trusted proxy is the last one nobody we trust could have
forged. With no trusted proxies (the default) the header is ignored.

`client_address` is the rule, without I/O; `ForwardedFor` applies it to
every request, so that the login form, the audit log and anything else that
asks `request.client` see the same address, and a trusted proxy's
X-Forwarded-Proto sets the scheme (the session cookie is `Secure` behind a
proxy that terminates TLS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(value: str) -> tuple[Network, ...]:
    """`10.0.0.5, 10.1.0.0/16, ::1`: addresses and CIDR blocks, comma-separated.

    Strict: a block with host bits set (`10.0.0.5/8`) is refused rather than
    silently widened, since it names more proxies than the operator meant.
    """
    networks = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"{item!r} is not an IP address or CIDR block ({exc}); e.g. 10.0.0.5,10.1.0.0/16"
            ) from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """An X-Forwarded-For entry as an address: bare, `v4:port`, or `[v6]:port`; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The address a request is counted from.

    `peer` is the direct peer of the connection; `forwarded_for` the values
    of its X-Forwarded-For headers, in order. The header counts only when
    the peer is trusted; then the right-most entry that is not trusted is
    the client. An entry that is no address stops the walk at the proxy
    that wrote it (its own address is the most we know). When every entry is
    trusted, the client is itself one of the proxies: the left-most.
    """
    if not _trusted(_address(peer), trusted):
        return peer
    entries = [e for value in forwarded_for for e in value.split(",") if e.strip()]
    nearest = peer
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            return nearest
        if not _trusted(address, trusted):
            return str(address)
        nearest = str(address)
    return nearest


def forwarded_scheme(
    peer: str, forwarded_proto: str | None, trusted: Sequence[Network]
) -> str | None:
    """The scheme a trusted proxy was reached with (its last X-Forwarded-Proto), else None."""
    if forwarded_proto is None or not _trusted(_address(peer), trusted):
        return None
    scheme = forwarded_proto.split(",")[-1].strip().lower()
    return scheme if scheme in ("http", "https") else None


class ForwardedFor:
    """ASGI middleware: the request's client and scheme as `client_address` decides."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted and scope.get("client"):
            peer = str(scope["client"][0])
            headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            protos = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"]
            changed: dict[str, Any] = {}
            client = client_address(peer, forwarded, self.trusted)
            if client != peer:
                changed["client"] = (client, 0)  # the client's port is not forwarded
            scheme = forwarded_scheme(peer, protos[-1] if protos else None, self.trusted)
            if scheme is not None:
                changed["scheme"] = scheme
            if changed:
                scope = {**scope, **changed}
        await self.app(scope, receive, send)

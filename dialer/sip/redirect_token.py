"""The pass a front hands an authenticated agent with its redirect to a dialer worker.

Agents authenticate once, at the front, where one throttle sees every
failed attempt. The 302's Contact carries a short-lived token bound to the
agent, the number and the SIP Call-ID; the worker accepts the redirected
INVITE on that token instead of challenging again. Pure: time is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PARAM = "dgt"
LIFETIME_S = 30.0
_TOKEN = re.compile(r"^([A-Za-z0-9._@-]{1,64})~(\d{1,12})~([0-9a-f]{32})$")


def _sign(secret: bytes, agent: str, expires: int, number: str, call_id: str) -> str:
    body = f"{agent}~{expires}~{number}~{call_id}".encode()
    return hmac.new(secret, body, hashlib.sha256).hexdigest()[:32]


def issue(secret: bytes, agent: str, number: str, call_id: str, now: float) -> str:
    expires = int(now + LIFETIME_S)
    return f"{agent}~{expires}~{_sign(secret, agent, expires, number, call_id)}"


def token_in(uri: str) -> str | None:
    """The token parameter of a SIP URI, if any."""
    head = uri.split("?", 1)[0]
    for param in head.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == PARAM:
            return value.strip()
    return None


def check(secret: bytes, token: str, number: str, call_id: str, now: float) -> str | None:
    """The agent the token was issued to, or None if forged, expired or for another call."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    agent, expires, signature = match.group(1), int(match.group(2)), match.group(3)
    if now > expires:
        return None
    want = _sign(secret, agent, expires, number, call_id)
    return agent if hmac.compare_digest(want, signature) else None

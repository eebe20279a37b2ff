"""Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30 s): the second factor.

Pure: the secret and the time are passed in. Supervisors and admins can pull
any recording, so a stolen password alone must not be enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

STEP = 30
DIGITS = 6


def new_secret() -> str:
    """A base32 secret (160 bits), as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def code_at(secret: str, unix: float) -> str:
    counter = int(unix // STEP)
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def verify(secret: str, code: str, unix: float, last_used_step: int | None = None) -> int | None:
    """The time step the code belongs to (one step of clock drift allowed), or None.

    A code is good once: pass the step last accepted and an older or equal
    one is refused, so a code read over a shoulder cannot be replayed.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now_step = int(unix // STEP)
    for step in (now_step, now_step - 1, now_step + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(code_at(secret, step * STEP), code):
            return step
    return None


def provisioning_uri(secret: str, username: str, issuer: str = "Dialguard") -> str:
    """otpauth:// URI for an authenticator app (type it in, or render it as a QR code)."""
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"

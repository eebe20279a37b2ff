"""Small personal-data fields sealed at rest: a phone number waiting in a queue, a name.

Each value gets its own data key, wrapped by the key ring like a recording's,
so the database alone reveals nothing and erasing works per value. Layout:
one byte of key-id length, the key id, two bytes of wrapped-key length, the
wrapped key, a 12-byte nonce, then AES-256-GCM ciphertext and tag.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recording.crypto import new_data_key
from recording.keys import KeyWrapper, WrappedKey

_AAD = b"dialguard-field-v1"


def seal_text(keys: KeyWrapper, text: str) -> bytes:
    dek = new_data_key()
    nonce = os.urandom(12)
    return _join(keys.wrap(dek), nonce + AESGCM(dek).encrypt(nonce, text.encode("utf-8"), _AAD))


def _split(blob: bytes) -> tuple[WrappedKey, bytes]:
    """(the wrapped data key, nonce + ciphertext + tag) of a sealed field."""
    (klen,) = struct.unpack_from(">B", blob, 0)
    kid = blob[1 : 1 + klen].decode()
    (wlen,) = struct.unpack_from(">H", blob, 1 + klen)
    start = 3 + klen
    return WrappedKey(kid, blob[start : start + wlen]), blob[start + wlen :]


def _join(wrapped: WrappedKey, sealed: bytes) -> bytes:
    kid = wrapped.kek_id.encode()
    return (
        struct.pack(">B", len(kid))
        + kid
        + struct.pack(">H", len(wrapped.blob))
        + wrapped.blob
        + sealed
    )


def sealed_under(blob: bytes) -> str:
    """The id of the key-encryption key a sealed field's data key is wrapped under."""
    try:
        return _split(blob)[0].kek_id
    except (struct.error, UnicodeDecodeError):
        raise ValueError("sealed field unreadable: malformed") from None


def rewrap_text(keys: KeyWrapper, blob: bytes) -> bytes:
    """The same sealed field with its data key wrapped under the current KEK (key rotation).

    The ciphertext is not touched; the data key is checked by unwrapping it.
    """
    try:
        wrapped, sealed = _split(blob)
        fresh = keys.rewrap(wrapped)
    except Exception as exc:  # struct, unicode, cryptography and key-ring errors alike
        raise ValueError(f"sealed field unreadable: {type(exc).__name__}") from None
    return blob if fresh == wrapped else _join(fresh, sealed)


def open_text(keys: KeyWrapper, blob: bytes) -> str:
    """The text; raises ValueError if the blob is damaged or its key is gone."""
    try:
        wrapped, sealed = _split(blob)
        dek = keys.unwrap(wrapped)
        return AESGCM(dek).decrypt(sealed[:12], sealed[12:], _AAD).decode("utf-8")
    except Exception as exc:  # struct, unicode, cryptography and key-ring errors alike
        raise ValueError(f"sealed field unreadable: {type(exc).__name__}") from None

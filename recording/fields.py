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
    wrapped = keys.wrap(dek)
    kid = wrapped.kek_id.encode()
    nonce = os.urandom(12)
    sealed = AESGCM(dek).encrypt(nonce, text.encode("utf-8"), _AAD)
    return (
        struct.pack(">B", len(kid)) + kid + struct.pack(">H", len(wrapped.blob)) + wrapped.blob
        + nonce + sealed
    )  # fmt: skip


def open_text(keys: KeyWrapper, blob: bytes) -> str:
    """The text; raises ValueError if the blob is damaged or its key is gone."""
    try:
        (klen,) = struct.unpack_from(">B", blob, 0)
        kid = blob[1 : 1 + klen].decode()
        (wlen,) = struct.unpack_from(">H", blob, 1 + klen)
        start = 3 + klen
        wrapped = WrappedKey(kid, blob[start : start + wlen])
        nonce = blob[start + wlen : start + wlen + 12]
        dek = keys.unwrap(wrapped)
        return AESGCM(dek).decrypt(nonce, blob[start + wlen + 12 :], _AAD).decode("utf-8")
    except Exception as exc:  # struct, unicode, cryptography and key-ring errors alike
        raise ValueError(f"sealed field unreadable: {type(exc).__name__}") from None

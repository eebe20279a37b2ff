"""Debtors' personal data sealed at rest: names and numbers, each row under its own key.

- Each debtor row has its own random 256-bit data key (DEK), stored only
  wrapped by the installation's key ring (`recording.keys.KeyWrapper`, the
  same KEKs as recordings), so a KEK rotation re-wraps one small key per
  debtor and a lost database dump without the key file reveals nothing.
  Every upsert seals the row afresh under a new DEK; numbers are replaced
  wholesale anyway, so no old key has to be unwrapped to write.
- The name and each number are AES-256-GCM under that DEK with a random
  96-bit nonce: ``0x01 || nonce (12) || ciphertext || tag (16)``. The
  associated data names the field and the row (client, account id, and for
  a number its keyed hash), so a ciphertext moved to another row or field
  does not open.
- A number is found without decrypting anything by its keyed hash
  (`dialer.numbers.number_key`, the HMAC the dialer and the do-not-call
  lists already use), and shown as its masked form (`dialer.numbers.mask`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dialer.debtors.models import Debtor, DebtorNumber
from dialer.debtors.validation import DebtorIn
from dialer.numbers import mask, number_key
from recording.crypto import DEK_SIZE, TamperedData
from recording.keys import KeyWrapper, WrappedKey

_SEAL_VERSION = 1
_NONCE_SIZE = 12
_AAD_PREFIX = b"dialguard debtor v1\x00"


def _aad(debtor: Debtor | DebtorIn, field: str) -> bytes:
    return b"\x00".join(
        [_AAD_PREFIX, field.encode(), debtor.client_id.encode(), debtor.external_id.encode()]
    )


def _seal(cipher: AESGCM, plaintext: str, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return bytes([_SEAL_VERSION]) + nonce + cipher.encrypt(nonce, plaintext.encode(), aad)


def _open(cipher: AESGCM, sealed: bytes, aad: bytes) -> str:
    if len(sealed) < 1 + _NONCE_SIZE + 16 or sealed[0] != _SEAL_VERSION:
        raise TamperedData("a sealed debtor field is malformed")
    try:
        return cipher.decrypt(sealed[1 : 1 + _NONCE_SIZE], sealed[1 + _NONCE_SIZE :], aad).decode()
    except InvalidTag:
        raise TamperedData(
            "a sealed debtor field does not authenticate (altered, or moved from another row)"
        ) from None


@dataclass(frozen=True)
class Sealer:
    """Seals and opens debtors' personal data; built from the key ring and the number secret."""

    keys: KeyWrapper
    number_secret: bytes

    def __post_init__(self) -> None:
        if len(self.number_secret) < 16:
            raise ValueError("the number secret must be at least 16 random bytes")

    def __repr__(self) -> str:
        return "Sealer(...)"

    def key_of(self, e164: str) -> str:
        return number_key(self.number_secret, e164)

    def _cipher(self, debtor: Debtor) -> AESGCM:
        return AESGCM(self.keys.unwrap(WrappedKey(debtor.kek_id, debtor.wrapped_key)))

    def name(self, debtor: Debtor) -> str:
        return _open(self._cipher(debtor), debtor.name_ct, _aad(debtor, "name"))

    def numbers(self, debtor: Debtor, rows: Iterable[DebtorNumber]) -> list[str]:
        """The E.164 numbers, for the dialer only: never for display or logs."""
        cipher = self._cipher(debtor)
        return [
            _open(cipher, row.number_ct, _aad(debtor, "number:" + row.number_key)) for row in rows
        ]

    def seal(self, debtor: DebtorIn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Column values of the debtor row and of its number rows (without debtor_id)."""
        dek = os.urandom(DEK_SIZE)
        wrapped = self.keys.wrap(dek)
        cipher = AESGCM(dek)
        row = {
            "client_id": debtor.client_id,
            "external_id": debtor.external_id,
            "stage": debtor.stage,
            "timezone": debtor.timezone,
            "name_ct": _seal(cipher, debtor.name, _aad(debtor, "name")),
            "kek_id": wrapped.kek_id,
            "wrapped_key": wrapped.blob,
            "callback_windows_json": json.dumps(
                [w.as_json() for w in debtor.windows], separators=(",", ":")
            ),
        }
        numbers = []
        for number in debtor.numbers:
            key = self.key_of(number.e164)
            numbers.append(
                {
                    "role": number.role.value,
                    "number_key": key,
                    "number_masked": mask(number.e164),
                    "number_ct": _seal(cipher, number.e164, _aad(debtor, "number:" + key)),
                }
            )
        return row, numbers

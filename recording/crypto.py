"""Envelope encryption of recordings: AES-256-GCM in authenticated chunks.

Every recording gets its own random 256-bit data key (DEK); only the wrapped
form of that key is ever stored (see `recording.keys`), so destroying the
wrapped key crypto-erases the recording even under WORM retention. The audio
is sealed in fixed-size chunks rather than as one GCM message so that a
player's HTTP Range request can be answered by fetching and opening only the
chunks it covers (`ciphertext_span`, `decrypt_range`), and so that files
larger than memory stream through in constant space.

Format, version 1 (all integers big-endian)::

    offset  size  field
    0       4     magic b"DGRE"
    4       1     version (1)
    5       4     chunk size C: plaintext bytes per chunk, 1..16 MiB
    9       8     plaintext length L
    17      16    file id (random per encryption)
    33      16    header tag: GCM tag of b"" with the 33 bytes above as AAD
    49      ...   chunks 0..N-1, N = max(1, ceil(L / C)); chunk i is the GCM
                  ciphertext of plaintext[i*C : (i+1)*C] followed by its 16-byte tag

Chunk i starts at 49 + i * (C + 16); every chunk is C + 16 bytes except the
last, which holds the remaining L - (N-1)*C bytes (an empty recording still
has one empty chunk, so its header is bound to a chunk like any other).

Why each part is there:

- The GCM key is not the DEK itself but HKDF-SHA256(DEK, salt=file id). Nonces
  are then a plain counter (4 zero bytes + u64 chunk index; the header tag
  uses prefix 1), which can never repeat within a file, and encrypting twice
  with the same DEK still never reuses a (key, nonce) pair.
- A chunk's AAD is the full 49-byte header, its index (u64) and a last-chunk
  flag (u8). Swapping, duplicating or moving a chunk changes its index;
  splicing chunks or headers of another file changes the header; dropping
  the tail is caught by the length in the (authenticated) header and the
  last flag; extra bytes after the last chunk are refused.
- The header has its own tag so that chunk size and length are trusted
  before they are used to plan ranged reads.

Decryption never releases a chunk before its tag verifies. `decrypt_stream`
writes chunk by chunk, so when it raises `TamperedData` the destination holds
an authentic prefix that must be discarded.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recording.errors import RecordingError

MAGIC = b"DGRE"
VERSION = 1
DEK_SIZE = 32
TAG_SIZE = 16
FILE_ID_SIZE = 16
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024

_FIELDS = struct.Struct(">4sBIQ16s")
HEADER_SIZE = _FIELDS.size + TAG_SIZE  # 49

_CHUNK_AAD = struct.Struct(">QB")
_NONCE = struct.Struct(">IQ")
_CHUNK_NONCE_PREFIX = 0
_HEADER_NONCE_PREFIX = 1
_KDF_INFO = b"dialguard recording chunks v1"

_RESTORE_HINT = "restore the recording from the replica bucket; report it if both copies fail"


class CryptoError(RecordingError):
    """A recording or key could not be encrypted or decrypted."""


class TamperedData(CryptoError):
    """Ciphertext, header or wrapped key failed authentication: never trust any of it."""

    hint = _RESTORE_HINT


class UnknownKey(CryptoError):
    """Data was sealed under a key-encryption key this key ring does not hold."""

    hint = "restore the key file that holds this key id, or configure the KMS that issued it"


@dataclass(frozen=True)
class EncryptedInfo:
    """What the uploader records next to the object (sizes and checksum for S3)."""

    plaintext_length: int
    ciphertext_length: int
    ciphertext_sha256: str  # hex


@dataclass(frozen=True)
class Header:
    """An authenticated header: only `read_header` makes these from stored bytes."""

    chunk_size: int
    plaintext_length: int
    file_id: bytes
    raw: bytes = field(repr=False)

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.plaintext_length // self.chunk_size))

    @property
    def ciphertext_length(self) -> int:
        return HEADER_SIZE + self.plaintext_length + self.chunk_count * TAG_SIZE

    def chunk_offset(self, index: int) -> int:
        """Where chunk `index` starts in the ciphertext."""
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    def chunk_plaintext_length(self, index: int) -> int:
        return min(self.chunk_size, self.plaintext_length - index * self.chunk_size)


def new_data_key() -> bytes:
    """A fresh random DEK: one per recording, so erasing one key erases one call."""
    return os.urandom(DEK_SIZE)


def _check_dek(dek: bytes) -> None:
    if not isinstance(dek, bytes) or len(dek) != DEK_SIZE:
        raise ValueError(f"a data key is {DEK_SIZE} bytes (AES-256)")


def _check_chunk_size(chunk_size: int) -> None:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be 1..{MAX_CHUNK_SIZE} bytes, not {chunk_size}")


def _file_cipher(dek: bytes, file_id: bytes) -> AESGCM:
    """The per-file GCM key, so that nonces only need to be unique within one file."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=DEK_SIZE, salt=file_id, info=_KDF_INFO)
    return AESGCM(hkdf.derive(dek))


def _chunk_nonce(index: int) -> bytes:
    return _NONCE.pack(_CHUNK_NONCE_PREFIX, index)


def _chunk_aad(header: Header, index: int) -> bytes:
    last = index == header.chunk_count - 1
    return header.raw + _CHUNK_AAD.pack(index, int(last))


def _seal_header(cipher: AESGCM, chunk_size: int, length: int, file_id: bytes) -> Header:
    fields = _FIELDS.pack(MAGIC, VERSION, chunk_size, length, file_id)
    tag = cipher.encrypt(_NONCE.pack(_HEADER_NONCE_PREFIX, 0), b"", fields)
    return Header(chunk_size, length, file_id, fields + tag)


def read_header(raw: bytes, dek: bytes) -> Header:
    """Parse and authenticate the first `HEADER_SIZE` bytes of an encrypted recording.

    Chunk size and length steer which byte ranges get fetched, so they are
    only believed once the header tag verifies under `dek`.
    """
    return _open_header(raw, dek)[0]


def _open_header(raw: bytes, dek: bytes) -> tuple[Header, AESGCM]:
    _check_dek(dek)
    if len(raw) < HEADER_SIZE:
        raise TamperedData(
            f"encrypted recording is truncated: {len(raw)} bytes, shorter than its header"
        )
    raw = bytes(raw[:HEADER_SIZE])
    magic, version, chunk_size, length, file_id = _FIELDS.unpack_from(raw)
    if magic != MAGIC:
        raise TamperedData("not a Dialguard encrypted recording (bad magic bytes)")
    if version != VERSION:
        raise TamperedData(
            f"encrypted recording has unsupported format version {version}",
            hint="read it with the Dialguard release that wrote it, or restore it from the replica",
        )
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise TamperedData(f"encrypted recording header has impossible chunk size {chunk_size}")
    cipher = _file_cipher(dek, file_id)
    fields, tag = raw[: _FIELDS.size], raw[_FIELDS.size :]
    try:
        cipher.decrypt(_NONCE.pack(_HEADER_NONCE_PREFIX, 0), tag, fields)
    except InvalidTag:
        raise TamperedData(
            "encrypted recording header does not authenticate (altered, or a different data key)"
        ) from None
    return Header(chunk_size, length, file_id, raw), cipher


def _open_chunk(cipher: AESGCM, header: Header, index: int, sealed: bytes) -> bytes:
    expected = header.chunk_plaintext_length(index) + TAG_SIZE
    if len(sealed) != expected:
        raise TamperedData(
            f"encrypted recording is truncated in chunk {index} of {header.chunk_count}"
        )
    try:
        return cipher.decrypt(_chunk_nonce(index), sealed, _chunk_aad(header, index))
    except InvalidTag:
        raise TamperedData(
            f"chunk {index} of {header.chunk_count} does not authenticate "
            "(altered, reordered or from another recording)"
        ) from None


def _read_full(src: BinaryIO, size: int) -> bytes:
    """Read `size` bytes or up to EOF: raw files and pipes may return short reads."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        part = src.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _remaining_length(src: BinaryIO) -> int:
    if not src.seekable():
        raise ValueError("source is not seekable: pass length= with the number of bytes it holds")
    here = src.tell()
    end = src.seek(0, os.SEEK_END)
    src.seek(here)
    return end - here


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    dek: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    length: int | None = None,
) -> EncryptedInfo:
    """Encrypt `src` (from its current position to EOF) into `dst`, one chunk in memory.

    The plaintext length is part of the authenticated header, so it must be
    known before the first chunk: it is taken from a seekable `src`, or given
    as `length` for a pipe. A source that does not hold exactly that many
    bytes (a recording still being written) is refused rather than sealed short.
    """
    _check_dek(dek)
    _check_chunk_size(chunk_size)
    total = _remaining_length(src) if length is None else length
    if total < 0:
        raise ValueError(f"length must not be negative, not {total}")
    file_id = os.urandom(FILE_ID_SIZE)
    cipher = _file_cipher(dek, file_id)
    header = _seal_header(cipher, chunk_size, total, file_id)
    digest = hashlib.sha256(header.raw)
    dst.write(header.raw)
    written = len(header.raw)
    for index in range(header.chunk_count):
        want = header.chunk_plaintext_length(index)
        chunk = _read_full(src, want)
        if len(chunk) != want:
            raise CryptoError(
                f"recording ended after {index * chunk_size + len(chunk)} of {total} bytes "
                "while being encrypted",
                hint="encrypt a recording only after the call has closed its file",
            )
        sealed = cipher.encrypt(_chunk_nonce(index), chunk, _chunk_aad(header, index))
        digest.update(sealed)
        dst.write(sealed)
        written += len(sealed)
    if src.read(1):
        raise CryptoError(
            f"recording grew past {total} bytes while being encrypted",
            hint="encrypt a recording only after the call has closed its file",
        )
    return EncryptedInfo(total, written, digest.hexdigest())


def decrypt_stream(src: BinaryIO, dst: BinaryIO, dek: bytes) -> int:
    """Decrypt a whole recording from `src` into `dst`; returns the plaintext length.

    Raises `TamperedData` for any alteration, truncation or trailing bytes.
    Each chunk is written only after it authenticates, so on error `dst`
    holds an authentic prefix, which the caller must discard.
    """
    header, cipher = _open_header(_read_full(src, HEADER_SIZE), dek)
    for index in range(header.chunk_count):
        sealed = _read_full(src, header.chunk_plaintext_length(index) + TAG_SIZE)
        dst.write(_open_chunk(cipher, header, index, sealed))
    if src.read(1):
        raise TamperedData("encrypted recording has data after its last chunk")
    return header.plaintext_length


def ciphertext_span(header: Header, start: int, end: int) -> tuple[int, int]:
    """(offset, length) of the ciphertext holding plaintext bytes `start..end` inclusive.

    The span covers whole chunks, since a chunk can only be authenticated
    whole; it is what one S3 ranged GET has to fetch.
    """
    if not 0 <= start <= end < header.plaintext_length:
        raise ValueError(
            f"byte range {start}-{end} is outside the recording's {header.plaintext_length} bytes"
        )
    first, last = start // header.chunk_size, end // header.chunk_size
    offset = header.chunk_offset(first)
    stop = header.chunk_offset(last) + header.chunk_plaintext_length(last) + TAG_SIZE
    return offset, stop - offset


def decrypt_range(
    read_at: Callable[[int, int], bytes], dek: bytes, start: int, end_inclusive: int
) -> bytes:
    """Plaintext bytes `start..end_inclusive`, reading only the header and the chunks needed.

    `read_at(offset, length)` returns that slice of the stored ciphertext
    (an S3 ranged GET later). It is called twice: once for the header, once
    for the span of chunks. Bytes appended after the last chunk are not
    seen here; `decrypt_stream` refuses them.
    """
    header, cipher = _open_header(read_at(0, HEADER_SIZE), dek)
    offset, length = ciphertext_span(header, start, end_inclusive)
    data = read_at(offset, length)
    if len(data) != length:
        raise TamperedData(
            f"encrypted recording returned {len(data)} of {length} bytes at offset {offset} "
            "(truncated)"
        )
    first = start // header.chunk_size
    last = end_inclusive // header.chunk_size
    plain: list[bytes] = []
    pos = 0
    for index in range(first, last + 1):
        size = header.chunk_plaintext_length(index) + TAG_SIZE
        plain.append(_open_chunk(cipher, header, index, data[pos : pos + size]))
        pos += size
    skip = start - first * header.chunk_size
    return b"".join(plain)[skip : skip + end_inclusive - start + 1]

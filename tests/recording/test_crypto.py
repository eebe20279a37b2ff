"""Chunked AES-256-GCM recordings: round trips, ranged reads, and every way to tamper."""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from recording.crypto import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    MAX_CHUNK_SIZE,
    TAG_SIZE,
    CryptoError,
    EncryptedInfo,
    Header,
    TamperedData,
    ciphertext_span,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    read_header,
)
from recording.errors import RecordingError

SMALL = 64  # chunk size that makes multi-chunk files tiny


def seal(plain: bytes, dek: bytes, chunk_size: int = SMALL) -> tuple[bytes, EncryptedInfo]:
    out = io.BytesIO()
    info = encrypt_stream(io.BytesIO(plain), out, dek, chunk_size)
    return out.getvalue(), info


def open_all(sealed: bytes, dek: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed), out, dek)
    return out.getvalue()


def reader(sealed: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, length: sealed[offset : offset + length]


def chunk_spans(sealed: bytes, dek: bytes) -> list[tuple[int, int]]:
    """(offset, end) of every chunk in `sealed`."""
    header = read_header(sealed, dek)
    spans = []
    for index in range(header.chunk_count):
        start = header.chunk_offset(index)
        spans.append((start, start + header.chunk_plaintext_length(index) + TAG_SIZE))
    return spans


def wav_bytes(seconds: float = 2.0, rate: int = 8000, tone: float = 400.0) -> bytes:
    """A mono 16-bit WAV of a sine: headers and a sample pattern that repeats every 20 samples."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * tone * n / rate)))
        for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "chunk_size"),
    [
        (0, SMALL),
        (1, SMALL),
        (SMALL - 1, SMALL),
        (SMALL, SMALL),
        (SMALL + 1, SMALL),
        (3 * SMALL, SMALL),
        (3 * SMALL + 7, SMALL),
        (0, DEFAULT_CHUNK_SIZE),
        (1, DEFAULT_CHUNK_SIZE),
        (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE),
        (DEFAULT_CHUNK_SIZE + 1, DEFAULT_CHUNK_SIZE),
        (5 * 1024 * 1024 + 321, DEFAULT_CHUNK_SIZE),
        (1000, 1),
    ],
)
def test_round_trip(length: int, chunk_size: int) -> None:
    plain = os.urandom(length)
    dek = new_data_key()
    sealed, info = seal(plain, dek, chunk_size)
    chunks = max(1, math.ceil(length / chunk_size))
    assert info == EncryptedInfo(
        plaintext_length=length,
        ciphertext_length=HEADER_SIZE + length + chunks * TAG_SIZE,
        ciphertext_sha256=hashlib.sha256(sealed).hexdigest(),
    )
    assert len(sealed) == info.ciphertext_length
    header = read_header(sealed[:HEADER_SIZE], dek)
    assert (header.chunk_size, header.plaintext_length, header.chunk_count) == (
        chunk_size,
        length,
        chunks,
    )
    assert header.ciphertext_length == len(sealed)
    out = io.BytesIO()
    assert decrypt_stream(io.BytesIO(sealed), out, dek) == length
    assert out.getvalue() == plain


def test_files_stream_through_in_chunk_sized_reads(tmp_path: Path) -> None:
    plain = os.urandom(3 * DEFAULT_CHUNK_SIZE + 5)
    (tmp_path / "call.wav").write_bytes(plain)
    dek = new_data_key()
    reads: list[int] = []

    class CountingFile(io.FileIO):
        def read(self, size: int | None = -1, /) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    with CountingFile(tmp_path / "call.wav") as src, (tmp_path / "call.enc").open("wb") as dst:
        info = encrypt_stream(src, dst, dek)
    assert max(reads) <= DEFAULT_CHUNK_SIZE and -1 not in reads
    assert info.ciphertext_length == (tmp_path / "call.enc").stat().st_size
    with (tmp_path / "call.enc").open("rb") as enc, (tmp_path / "out.wav").open("wb") as dst:
        decrypt_stream(enc, dst, dek)
    assert (tmp_path / "out.wav").read_bytes() == plain


def test_encryption_starts_at_the_source_position() -> None:
    src = io.BytesIO(b"skipped" + b"payload")
    src.seek(7)
    out = io.BytesIO()
    dek = new_data_key()
    encrypt_stream(src, out, dek, SMALL)
    assert open_all(out.getvalue(), dek) == b"payload"


def test_unseekable_source_needs_its_length(tmp_path: Path) -> None:
    plain = os.urandom(1000)
    dek = new_data_key()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, plain)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        with pytest.raises(ValueError, match="length="):
            encrypt_stream(pipe, io.BytesIO(), dek, SMALL)
        out = io.BytesIO()
        encrypt_stream(pipe, out, dek, SMALL, length=len(plain))
    assert open_all(out.getvalue(), dek) == plain


@pytest.mark.parametrize(
    ("actual", "declared", "message"),
    [(99, 100, "ended after 99 of 100"), (101, 100, "grew past 100")],
)
def test_source_that_changes_length_is_refused(actual: int, declared: int, message: str) -> None:
    with pytest.raises(CryptoError, match=message) as refused:
        encrypt_stream(
            io.BytesIO(os.urandom(actual)), io.BytesIO(), new_data_key(), SMALL, length=declared
        )
    assert not isinstance(refused.value, TamperedData)
    assert refused.value.hint


@pytest.mark.parametrize(
    ("dek", "chunk_size", "message"),
    [
        (b"\x00" * 16, SMALL, "32 bytes"),
        (b"\x00" * 33, SMALL, "32 bytes"),
        (b"\x00" * 32, 0, "chunk size"),
        (b"\x00" * 32, MAX_CHUNK_SIZE + 1, "chunk size"),
    ],
)
def test_bad_arguments_are_refused(dek: bytes, chunk_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), dek, chunk_size)


def test_new_data_keys_are_random_256_bit() -> None:
    keys = {new_data_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(key) == 32 for key in keys)


# --- confidentiality -----------------------------------------------------------------


def test_ciphertext_shows_nothing_of_the_wav() -> None:
    plain = wav_bytes()
    for marker in (b"RIFF", b"WAVE", b"fmt ", b"data"):
        assert marker in plain
    dek = new_data_key()
    for chunk_size in (SMALL, 1024, DEFAULT_CHUNK_SIZE):
        sealed, _ = seal(plain, dek, chunk_size)
        for marker in (b"RIFF", b"WAVE", b"fmt ", b"data"):
            assert marker not in sealed
        # No 8-byte run of the audio (its sine repeats every 40 bytes) survives anywhere.
        windows = {sealed[i : i + 8] for i in range(len(sealed) - 7)}
        assert not any(plain[i : i + 8] in windows for i in range(len(plain) - 7))


def test_two_encryptions_of_the_same_audio_differ() -> None:
    plain = wav_bytes(0.5)
    dek = new_data_key()
    first, _ = seal(plain, dek)
    second, _ = seal(plain, dek)
    other_key, _ = seal(plain, new_data_key())
    assert len({first, second, other_key}) == 3
    assert read_header(first, dek).file_id != read_header(second, dek).file_id
    # Nothing lines up between two encryptions under one key: no shared keystream.
    assert not any(
        first[i : i + 16] == second[i : i + 16] for i in range(HEADER_SIZE, len(first), 16)
    )
    assert open_all(first, dek) == open_all(second, dek) == plain


def test_reprs_hold_no_key_material() -> None:
    dek = new_data_key()
    sealed, info = seal(b"hello", dek)
    header = read_header(sealed, dek)
    for text in (repr(info), repr(header), str(header)):
        assert dek.hex() not in text and repr(dek) not in text
        assert repr(header.raw) not in text


# --- ranged reads --------------------------------------------------------------------

RANGE_CHUNK = 100
RANGE_LENGTH = 5 * RANGE_CHUNK + 37  # six chunks, the last one short
EDGES = [0, 1, 99, 100, 101, 199, 200, 299, 399, 400, 499, 500, 501, RANGE_LENGTH - 1]
PAIRS = sorted({(a, b) for a in EDGES for b in EDGES if a <= b})


@pytest.fixture(scope="module")
def ranged() -> tuple[bytes, bytes, bytes]:
    plain = os.urandom(RANGE_LENGTH)
    dek = new_data_key()
    return plain, dek, seal(plain, dek, RANGE_CHUNK)[0]


@pytest.mark.parametrize(("start", "end"), PAIRS)
def test_decrypt_range_matches_the_plaintext_slice(
    ranged: tuple[bytes, bytes, bytes], start: int, end: int
) -> None:
    plain, dek, sealed = ranged
    reads: list[tuple[int, int]] = []

    def read_at(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return sealed[offset : offset + length]

    assert decrypt_range(read_at, dek, start, end) == plain[start : end + 1]
    header = read_header(sealed, dek)
    assert reads == [(0, HEADER_SIZE), ciphertext_span(header, start, end)]


def test_decrypt_range_random_pairs(ranged: tuple[bytes, bytes, bytes]) -> None:
    plain, dek, sealed = ranged
    rng = random.Random(7)
    for _ in range(300):
        start = rng.randrange(RANGE_LENGTH)
        end = rng.randrange(start, RANGE_LENGTH)
        assert decrypt_range(reader(sealed), dek, start, end) == plain[start : end + 1]


def test_decrypt_range_of_a_large_file_reads_one_chunk() -> None:
    plain = os.urandom(2 * 1024 * 1024 + 11)
    dek = new_data_key()
    sealed, _ = seal(plain, dek, DEFAULT_CHUNK_SIZE)
    start = 10 * DEFAULT_CHUNK_SIZE + 5
    reads: list[int] = []

    def read_at(offset: int, length: int) -> bytes:
        reads.append(length)
        return sealed[offset : offset + length]

    assert decrypt_range(read_at, dek, start, start + 999) == plain[start : start + 1000]
    assert reads == [HEADER_SIZE, DEFAULT_CHUNK_SIZE + TAG_SIZE]
    last = len(plain) - 1
    assert decrypt_range(reader(sealed), dek, last, last) == plain[-1:]


C = RANGE_CHUNK + TAG_SIZE


@pytest.mark.parametrize(
    ("start", "end", "span"),
    [
        (0, 0, (HEADER_SIZE, C)),
        (0, 99, (HEADER_SIZE, C)),
        (0, 100, (HEADER_SIZE, 2 * C)),
        (99, 100, (HEADER_SIZE, 2 * C)),
        (100, 199, (HEADER_SIZE + C, C)),
        (250, 250, (HEADER_SIZE + 2 * C, C)),
        (500, 500, (HEADER_SIZE + 5 * C, 37 + TAG_SIZE)),
        (499, RANGE_LENGTH - 1, (HEADER_SIZE + 4 * C, C + 37 + TAG_SIZE)),
        (0, RANGE_LENGTH - 1, (HEADER_SIZE, 5 * C + 37 + TAG_SIZE)),
    ],
)
def test_ciphertext_span(
    ranged: tuple[bytes, bytes, bytes], start: int, end: int, span: tuple[int, int]
) -> None:
    _, dek, sealed = ranged
    header = read_header(sealed, dek)
    assert ciphertext_span(header, start, end) == span
    assert span[0] + span[1] <= len(sealed)


@pytest.mark.parametrize(
    ("start", "end"), [(-1, 5), (5, 4), (0, RANGE_LENGTH), (RANGE_LENGTH, RANGE_LENGTH)]
)
def test_ranges_outside_the_recording_are_refused(
    ranged: tuple[bytes, bytes, bytes], start: int, end: int
) -> None:
    _, dek, sealed = ranged
    with pytest.raises(ValueError, match=f"{start}-{end}"):
        decrypt_range(reader(sealed), dek, start, end)


def test_an_empty_recording_has_no_satisfiable_range() -> None:
    dek = new_data_key()
    sealed, _ = seal(b"", dek)
    with pytest.raises(ValueError, match="outside"):
        decrypt_range(reader(sealed), dek, 0, 0)


# --- tampering -----------------------------------------------------------------------

TAMPER_LENGTH = 3 * SMALL + 20  # chunks of 64, 64, 64 and 20 bytes


def swap(blob: bytes, spans: list[tuple[int, int]], i: int, j: int) -> bytes:
    (a0, a1), (b0, b1) = spans[i], spans[j]
    assert a1 <= b0 and a1 - a0 == b1 - b0
    return blob[:a0] + blob[b0:b1] + blob[a1:b0] + blob[a0:a1] + blob[b1:]


def flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


Tamper = Callable[[bytes, list[tuple[int, int]], bytes], bytes]

TAMPERS: dict[str, Tamper] = {
    "magic": lambda b, s, o: flip(b, 0),
    "version": lambda b, s, o: b[:4] + b"\x02" + b[5:],
    "chunk size": lambda b, s, o: flip(b, 8),
    "chunk size zero": lambda b, s, o: b[:5] + b"\x00\x00\x00\x00" + b[9:],
    "length shortened to drop the last chunk": lambda b, s, o: (
        b[:9] + struct.pack(">Q", 3 * SMALL) + b[17 : s[-1][0]]
    ),
    "file id": lambda b, s, o: flip(b, 20),
    "header tag": lambda b, s, o: flip(b, HEADER_SIZE - 1),
    "header of another recording": lambda b, s, o: o[:HEADER_SIZE] + b[HEADER_SIZE:],
    "first chunk body": lambda b, s, o: flip(b, s[0][0]),
    "middle chunk tag": lambda b, s, o: flip(b, s[1][1] - 1),
    "last chunk body": lambda b, s, o: flip(b, s[-1][0] + 3),
    "truncated by one byte": lambda b, s, o: b[:-1],
    "truncated to the header": lambda b, s, o: b[:HEADER_SIZE],
    "truncated inside the header": lambda b, s, o: b[:10],
    "empty object": lambda b, s, o: b"",
    "last chunk dropped": lambda b, s, o: b[: s[-1][0]],
    "last full chunk dropped": lambda b, s, o: b[: s[2][0]] + b[s[3][0] :],
    "middle chunk dropped": lambda b, s, o: b[: s[1][0]] + b[s[2][0] :],
    "one byte appended": lambda b, s, o: b + b"\x00",
    "last chunk appended again": lambda b, s, o: b + b[s[-1][0] :],
    "chunks 0 and 1 swapped": lambda b, s, o: swap(b, s, 0, 1),
    "chunks 0 and 2 swapped": lambda b, s, o: swap(b, s, 0, 2),
    "chunk 0 duplicated over chunk 1": lambda b, s, o: (
        b[: s[1][0]] + b[slice(*s[0])] + b[s[1][1] :]
    ),
    "chunk from another recording": lambda b, s, o: b[: s[1][0]] + o[slice(*s[1])] + b[s[1][1] :],
}


@pytest.fixture(scope="module")
def tamper_case() -> tuple[bytes, bytes, bytes, bytes]:
    """Plaintext, DEK, its ciphertext, and another recording under the same DEK."""
    plain = os.urandom(TAMPER_LENGTH)
    dek = new_data_key()
    return plain, dek, seal(plain, dek)[0], seal(os.urandom(TAMPER_LENGTH), dek)[0]


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_is_detected(name: str, tamper_case: tuple[bytes, bytes, bytes, bytes]) -> None:
    plain, dek, sealed, other = tamper_case
    bad = TAMPERS[name](sealed, chunk_spans(sealed, dek), other)
    assert bad != sealed
    out = io.BytesIO()
    with pytest.raises(TamperedData) as caught:
        decrypt_stream(io.BytesIO(bad), out, dek)
    # What was written before the error is authentic plaintext, never altered bytes.
    assert plain.startswith(out.getvalue())
    assert isinstance(caught.value, RecordingError) and caught.value.hint
    # A ranged read of the whole recording refuses it as well (unless only the tail grew,
    # which a ranged read cannot see and which changes no plaintext).
    if "appended" not in name:
        with pytest.raises(TamperedData):
            decrypt_range(reader(bad), dek, 0, TAMPER_LENGTH - 1)


def test_every_single_bit_flip_is_detected(tamper_case: tuple[bytes, bytes, bytes, bytes]) -> None:
    plain, dek, sealed, _ = tamper_case
    for at in range(len(sealed)):
        for bit in (0x01, 0x80):
            bad = sealed[:at] + bytes([sealed[at] ^ bit]) + sealed[at + 1 :]
            out = io.BytesIO()
            with pytest.raises(TamperedData):
                decrypt_stream(io.BytesIO(bad), out, dek)
            assert plain.startswith(out.getvalue())


def test_an_empty_recording_is_protected_too() -> None:
    dek = new_data_key()
    sealed, _ = seal(b"", dek)
    assert len(sealed) == HEADER_SIZE + TAG_SIZE
    assert open_all(sealed, dek) == b""
    for bad in (sealed[:HEADER_SIZE], sealed + b"\x00", flip(sealed, HEADER_SIZE)):
        with pytest.raises(TamperedData):
            open_all(bad, dek)


def test_the_wrong_data_key_is_refused_at_the_header(
    tamper_case: tuple[bytes, bytes, bytes, bytes],
) -> None:
    _, _, sealed, _ = tamper_case
    with pytest.raises(TamperedData, match="header does not authenticate"):
        open_all(sealed, new_data_key())
    with pytest.raises(TamperedData):
        decrypt_range(reader(sealed), new_data_key(), 0, 0)


@pytest.mark.parametrize("short_at", [0, HEADER_SIZE])
def test_a_short_ranged_read_is_refused(
    tamper_case: tuple[bytes, bytes, bytes, bytes], short_at: int
) -> None:
    _, dek, sealed, _ = tamper_case

    def read_at(offset: int, length: int) -> bytes:
        return sealed[offset : offset + length - (offset >= short_at)]

    with pytest.raises(TamperedData, match="truncated"):
        decrypt_range(read_at, dek, 70, 80)


def test_a_ranged_read_checks_only_the_chunks_it_reads(
    tamper_case: tuple[bytes, bytes, bytes, bytes],
) -> None:
    plain, dek, sealed, _ = tamper_case
    spans = chunk_spans(sealed, dek)
    bad = flip(sealed, spans[2][0])
    assert decrypt_range(reader(bad), dek, 0, 2 * SMALL - 1) == plain[: 2 * SMALL]
    with pytest.raises(TamperedData, match="chunk 2 of 4"):
        decrypt_range(reader(bad), dek, 2 * SMALL - 1, 2 * SMALL)


def test_header_is_read_only_when_authentic(tamper_case: tuple[bytes, bytes, bytes, bytes]) -> None:
    _, dek, sealed, _ = tamper_case
    header = read_header(sealed, dek)
    assert isinstance(header, Header)
    assert header.chunk_count == 4
    with pytest.raises(TamperedData, match="bad magic"):
        read_header(b"RIFF" + sealed[4:], dek)
    with pytest.raises(TamperedData, match="version 2"):
        read_header(sealed[:4] + b"\x02" + sealed[5:], dek)

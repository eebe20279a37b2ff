"""The file-backed key ring: 0600 key file, wrapping, rotation, and clear errors without secrets."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from recording.crypto import (
    CryptoError,
    TamperedData,
    UnknownKey,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
)
from recording.errors import RecordingError
from recording.keys import (
    FileKeyRing,
    KeyFileError,
    KeyWrapper,
    WrappedKey,
    read_or_create_secret,
)


def key_file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def secrets_in(path: Path) -> list[str]:
    """Every KEK in the file, base64 as stored plus other spellings a leak might take."""
    found = []
    for entry in key_file(path)["keys"].values():
        raw = base64.b64decode(entry["key"])
        found += [entry["key"], raw.hex(), repr(raw)]
    return found


def assert_no_secrets(text: str, path: Path) -> None:
    for secret in secrets_in(path):
        assert secret not in text


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "kek.json"


@pytest.fixture
def ring(ring_path: Path) -> FileKeyRing:
    return FileKeyRing(ring_path)


# --- the key file --------------------------------------------------------------------


def test_missing_key_file_is_created_private(ring: FileKeyRing, ring_path: Path) -> None:
    assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600
    data = key_file(ring_path)
    assert data["version"] == 1
    assert list(data["keys"]) == [data["current"]] == [ring.current_kek_id]
    assert len(base64.b64decode(data["keys"][ring.current_kek_id]["key"])) == 32
    assert ring.current_kek_id.startswith("kek-")


def test_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        FileKeyRing(tmp_path / "kek.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "kek.json").stat().st_mode) == 0o600
    leftovers = {p.name for p in tmp_path.iterdir()} - {"kek.json", "kek.json.lock"}
    assert not leftovers


def test_existing_key_file_is_reused(ring: FileKeyRing, ring_path: Path) -> None:
    before = ring_path.read_bytes()
    again = FileKeyRing(ring_path)
    assert again.current_kek_id == ring.current_kek_id
    assert ring_path.read_bytes() == before
    dek = new_data_key()
    assert again.unwrap(ring.wrap(dek)) == dek


def test_reprs_hold_no_key_material(ring: FileKeyRing, ring_path: Path) -> None:
    dek = new_data_key()
    wrapped = ring.wrap(dek)
    for text in (repr(ring), str(ring), repr(wrapped), str(wrapped)):
        assert_no_secrets(text, ring_path)
        assert dek.hex() not in text and repr(wrapped.blob) not in text
    assert ring.current_kek_id in repr(wrapped)


def test_file_key_ring_is_a_key_wrapper(ring: FileKeyRing) -> None:
    wrapper: KeyWrapper = ring
    assert isinstance(wrapper, KeyWrapper)


# --- wrapping ------------------------------------------------------------------------


def test_wrap_and_unwrap(ring: FileKeyRing) -> None:
    dek = new_data_key()
    first, second = ring.wrap(dek), ring.wrap(dek)
    assert first.kek_id == second.kek_id == ring.current_kek_id
    assert first.blob != second.blob
    assert dek not in first.blob
    assert ring.unwrap(first) == ring.unwrap(second) == dek


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_only_256_bit_data_keys_are_wrapped(ring: FileKeyRing, size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ring.wrap(os.urandom(size))


def test_rotation_keeps_old_keys_and_rewraps(ring: FileKeyRing, ring_path: Path) -> None:
    dek = new_data_key()
    old = ring.wrap(dek)
    new_id = ring.rotate()
    assert new_id != old.kek_id
    assert ring.current_kek_id == new_id == key_file(ring_path)["current"]
    assert set(ring.kek_ids) == {old.kek_id, new_id} == set(key_file(ring_path)["keys"])
    assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600
    assert ring.unwrap(old) == dek
    moved = ring.rewrap(old)
    assert moved.kek_id == new_id
    assert ring.unwrap(moved) == dek
    assert ring.wrap(dek).kek_id == new_id
    assert ring.rewrap(moved) == moved  # already under the current KEK


def test_rewrap_leaves_the_audio_alone(ring: FileKeyRing) -> None:
    audio = os.urandom(200_000)
    dek = new_data_key()
    stored = io.BytesIO()
    encrypt_stream(io.BytesIO(audio), stored, dek)
    wrapped = ring.wrap(dek)
    del dek
    ring.rotate()
    rewrapped = ring.rewrap(wrapped)
    assert rewrapped.kek_id != wrapped.kek_id
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(stored.getvalue()), out, ring.unwrap(rewrapped))
    assert out.getvalue() == audio


def test_rotation_by_another_process_is_seen(ring: FileKeyRing, ring_path: Path) -> None:
    other = FileKeyRing(ring_path)
    new_id = other.rotate()
    dek = new_data_key()
    assert ring.unwrap(other.wrap(dek)) == dek
    assert ring.current_kek_id == new_id
    assert ring.wrap(dek).kek_id == new_id
    # And a rotation here does not lose the one made there.
    third = ring.rotate()
    assert set(key_file(ring_path)["keys"]) == set(other.kek_ids) == set(ring.kek_ids)
    assert len({new_id, third, *ring.kek_ids}) == 3


# --- errors --------------------------------------------------------------------------


def test_unknown_key_id_is_named_without_secrets(ring: FileKeyRing, ring_path: Path) -> None:
    wrapped = ring.wrap(new_data_key())
    with pytest.raises(UnknownKey) as caught:
        ring.unwrap(WrappedKey("kek-20200101-deadbeef", wrapped.blob))
    message = str(caught.value)
    assert "'kek-20200101-deadbeef'" in message and str(ring_path) in message
    assert isinstance(caught.value, CryptoError) and isinstance(caught.value, RecordingError)
    assert caught.value.hint
    assert_no_secrets(message + caught.value.hint, ring_path)
    with pytest.raises(UnknownKey, match="kek-gone"):
        ring.rewrap(WrappedKey("kek-gone", wrapped.blob))


def test_a_blob_relabelled_with_another_key_id_is_refused(ring: FileKeyRing) -> None:
    old = ring.wrap(new_data_key())
    new_id = ring.rotate()
    with pytest.raises(TamperedData, match=new_id):
        ring.unwrap(WrappedKey(new_id, old.blob))


def test_every_altered_byte_of_a_wrapped_key_is_refused(ring: FileKeyRing) -> None:
    wrapped = ring.wrap(new_data_key())
    for at in range(len(wrapped.blob)):
        blob = wrapped.blob[:at] + bytes([wrapped.blob[at] ^ 0x04]) + wrapped.blob[at + 1 :]
        with pytest.raises(TamperedData):
            ring.unwrap(WrappedKey(wrapped.kek_id, blob))
    for blob in (wrapped.blob[:-1], wrapped.blob + b"\x00", b""):
        with pytest.raises(TamperedData):
            ring.unwrap(WrappedKey(wrapped.kek_id, blob))


GOOD_KEY = base64.b64encode(b"k" * 32).decode()
KEY_ENTRY = {"key": GOOD_KEY, "created": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[]", "does not hold a JSON object"),
        (json.dumps({"version": 2, "current": "a", "keys": {"a": KEY_ENTRY}}), "version 2"),
        (json.dumps({"version": 1, "current": "a", "keys": {}}), "has no keys"),
        (json.dumps({"version": 1, "current": "b", "keys": {"a": KEY_ENTRY}}), "'b' as current"),
        (json.dumps({"version": 1, "keys": {"a": KEY_ENTRY}}), "None as current"),
        (json.dumps({"version": 1, "current": "a", "keys": {"a": GOOD_KEY}}), "entry for key 'a'"),
        (
            json.dumps({"version": 1, "current": "a", "keys": {"a": {"key": GOOD_KEY + "!"}}}),
            "key 'a' that is not base64",
        ),
        (
            json.dumps({"version": 1, "current": "a", "keys": {"a": {"key": GOOD_KEY[:24]}}}),
            "key 'a' that is not 32 bytes",
        ),
    ],
)
def test_a_corrupted_key_file_is_a_clear_error(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = tmp_path / "kek.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message) as caught:
        FileKeyRing(path)
    assert str(path) in str(caught.value)
    assert caught.value.hint
    assert GOOD_KEY not in str(caught.value) and GOOD_KEY[:24] not in str(caught.value)
    assert path.read_bytes() == (content.encode() if isinstance(content, str) else content)


def test_a_key_file_corrupted_while_in_use_is_a_clear_error(
    ring: FileKeyRing, ring_path: Path
) -> None:
    wrapped = ring.wrap(new_data_key())
    ring_path.write_text('{"version": 1, "current": ')
    with pytest.raises(KeyFileError, match="not valid JSON"):
        ring.unwrap(WrappedKey("kek-not-loaded", wrapped.blob))


def test_a_key_file_readable_by_others_is_refused(ring: FileKeyRing, ring_path: Path) -> None:
    secrets_before = secrets_in(ring_path)
    ring_path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by other users") as caught:
        FileKeyRing(ring_path)
    assert caught.value.hint == f"run: chmod 600 {ring_path}"
    for secret in secrets_before:
        assert secret not in str(caught.value)


def test_a_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kek.json").mkdir()
    with pytest.raises(KeyFileError, match="not a regular file"):
        FileKeyRing(tmp_path / "kek.json")


def _secret_in_process(path: Path, go: Any, out: Any) -> None:
    go.wait(30)
    out.put(read_or_create_secret(path))


def test_processes_starting_at_once_share_one_whole_secret(tmp_path: Path) -> None:
    """Dialer workers start together: all must read the one secret, none a half-written file."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    path = tmp_path / "keys" / "number-key"
    go, out = ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=_secret_in_process, args=(path, go, out)) for _ in range(8)]
    for process in processes:
        process.start()
    go.set()
    secrets_read = {out.get(timeout=30) for _ in processes}
    for process in processes:
        process.join(10)
        assert process.exitcode == 0
    assert secrets_read == {path.read_bytes()}
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["number-key"]  # no temporary left

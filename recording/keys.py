"""Key-encryption keys (KEKs): how recording data keys are kept, only ever wrapped.

A recording's data key (DEK, see `recording.crypto`) is stored only as a
`WrappedKey`: the DEK sealed under a KEK, plus the KEK's id so that the right
KEK is found after rotation. Destroying a wrapped DEK crypto-erases its
recording; rotating a KEK re-wraps DEKs and never touches the audio.

`KeyWrapper` is what the rest of Dialguard depends on, so a KMS can take over
from `FileKeyRing`, the development key ring kept in one JSON file::

    {"version": 1, "current": "kek-20250101-1a2b3c4d",
     "keys": {"kek-20250101-1a2b3c4d": {"key": "<base64 of 32 bytes>",
                                        "created": "2025-01-01T00:00:00Z"}}}

A wrapped blob is `0x01 || nonce (12) || AES-256-GCM(KEK, DEK) with tag (48)`,
with the KEK id in the associated data so a blob relabelled with another id
does not authenticate. Random nonces bound one KEK to about 2**32 wraps,
far beyond the recordings of a call center between rotations.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recording.crypto import DEK_SIZE, CryptoError, TamperedData, UnknownKey

KEK_SIZE = 32
FILE_VERSION = 1
_BLOB_VERSION = 1
_NONCE_SIZE = 12
_BLOB_SIZE = 1 + _NONCE_SIZE + DEK_SIZE + 16
_AAD_PREFIX = b"dialguard dek wrap v1\x00"


class KeyFileError(CryptoError):
    """The key file cannot be read or is not a key ring: recordings cannot be opened."""

    hint = "restore the key file from backup; never delete it while recordings use its keys"


@dataclass(frozen=True)
class WrappedKey:
    """A DEK sealed under the KEK `kek_id`: safe to store in the database."""

    kek_id: str
    blob: bytes = field(repr=False)


@runtime_checkable
class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; implemented by `FileKeyRing` now, a KMS later."""

    @property
    def current_kek_id(self) -> str: ...

    def wrap(self, dek: bytes) -> WrappedKey:
        """Seal `dek` under the current KEK."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """The DEK, from a key wrapped under any KEK still held (current or older)."""
        ...

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """The same DEK wrapped under the current KEK, for rotation without touching audio."""
        ...


@dataclass(frozen=True)
class _Kek:
    secret: bytes = field(repr=False)
    created: str


def _check_dek(dek: bytes) -> None:
    if not isinstance(dek, bytes) or len(dek) != DEK_SIZE:
        raise ValueError(f"a data key is {DEK_SIZE} bytes (AES-256)")


def _aad(kek_id: str) -> bytes:
    return _AAD_PREFIX + kek_id.encode("utf-8")


def _new_kek_id(taken: dict[str, _Kek]) -> str:
    day = datetime.now(UTC).strftime("%Y%m%d")
    while True:
        kek_id = f"kek-{day}-{secrets.token_hex(4)}"
        if kek_id not in taken:
            return kek_id


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _bad_file(path: Path, why: str) -> KeyFileError:
    return KeyFileError(f"key file {path} {why}")


def _parse(path: Path, raw: bytes) -> tuple[str, dict[str, _Kek]]:
    """The current id and keys; messages name key ids, never key material."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise _bad_file(path, "is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad_file(path, "does not hold a JSON object")
    if data.get("version") != FILE_VERSION:
        raise _bad_file(path, f"has unsupported version {data.get('version')!r}")
    entries = data.get("keys")
    if not isinstance(entries, dict) or not entries:
        raise _bad_file(path, "has no keys")
    keys: dict[str, _Kek] = {}
    for kek_id, entry in entries.items():
        encoded = entry.get("key") if isinstance(entry, dict) else None
        if not kek_id or not isinstance(encoded, str):
            raise _bad_file(path, f"has a malformed entry for key {kek_id!r}")
        try:
            secret = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _bad_file(path, f"has key {kek_id!r} that is not base64") from None
        if len(secret) != KEK_SIZE:
            raise _bad_file(path, f"has key {kek_id!r} that is not {KEK_SIZE} bytes")
        keys[kek_id] = _Kek(secret, str(entry.get("created", "")))
    current = data.get("current")
    if not isinstance(current, str) or current not in keys:
        raise _bad_file(path, f"marks {current!r} as current, which is not one of its keys")
    return current, keys


def _dump(current: str, keys: dict[str, _Kek]) -> bytes:
    entries = {
        kek_id: {"key": base64.b64encode(kek.secret).decode("ascii"), "created": kek.created}
        for kek_id, kek in keys.items()
    }
    text = json.dumps({"version": FILE_VERSION, "current": current, "keys": entries}, indent=2)
    return (text + "\n").encode("ascii")


def _write_atomic(path: Path, content: bytes) -> None:
    """Replace `path` whole, 0600 from the first byte, durable before returning.

    A key file cut short by a crash would make every recording under its
    keys unreadable, so it is written aside, synced, then renamed over.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_or_create_secret(path: Path, size: int = 32) -> bytes:
    """A random secret kept in a 0600 file, made once however many processes start at once.

    Every dialer and web process of a site must agree on it (number keys,
    audit MACs), and several start together. The secret is written aside and
    linked into place, which fails if another process got there first: then
    its complete file is read, never a half-written one.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(size))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class FileKeyRing:
    """KEKs in a local 0600 JSON file, for development and single-host installs.

    Several processes (uploader, API) may share one file: creation and
    rotation hold an exclusive lock on `<file>.lock` and re-read the file
    first, so no process ever overwrites a key another one has used; readers
    notice a rotation by the file changing on disk.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._current = ""
        self._keys: dict[str, _Kek] = {}
        self._seen: tuple[int, int, int] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                with self._locked():
                    if not self.path.exists():
                        kek_id = _new_kek_id({})
                        fresh = {kek_id: _Kek(os.urandom(KEK_SIZE), _now())}
                        _write_atomic(self.path, _dump(kek_id, fresh))
        except OSError as exc:
            raise _bad_file(self.path, f"cannot be created ({exc.strerror})") from None
        self._reload()

    def __repr__(self) -> str:
        return f"FileKeyRing({str(self.path)!r}, current={self._current!r})"

    @property
    def current_kek_id(self) -> str:
        self._refresh()
        return self._current

    @property
    def kek_ids(self) -> tuple[str, ...]:
        """Every KEK id held, oldest first."""
        self._refresh()
        return tuple(self._keys)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _stat(self) -> os.stat_result:
        try:
            return self.path.stat()
        except OSError as exc:
            raise _bad_file(self.path, f"cannot be read ({exc.strerror})") from None

    def _reload(self) -> None:
        info = self._stat()
        if not stat.S_ISREG(info.st_mode):
            raise _bad_file(self.path, "is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"key file {self.path} is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o})",
                hint=f"run: chmod 600 {self.path}",
            )
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise _bad_file(self.path, f"cannot be read ({exc.strerror})") from None
        self._current, self._keys = _parse(self.path, raw)
        self._seen = (info.st_ino, info.st_mtime_ns, info.st_size)

    def _refresh(self) -> None:
        info = self._stat()
        if (info.st_ino, info.st_mtime_ns, info.st_size) != self._seen:
            self._reload()

    def _kek(self, kek_id: str) -> bytes:
        if kek_id not in self._keys:
            self._refresh()
        kek = self._keys.get(kek_id)
        if kek is None:
            raise UnknownKey(f"key id {kek_id!r} is not in key file {self.path}")
        return kek.secret

    def wrap(self, dek: bytes) -> WrappedKey:
        _check_dek(dek)
        self._refresh()
        kek_id = self._current
        nonce = os.urandom(_NONCE_SIZE)
        sealed = AESGCM(self._kek(kek_id)).encrypt(nonce, dek, _aad(kek_id))
        return WrappedKey(kek_id, bytes([_BLOB_VERSION]) + nonce + sealed)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        kek = self._kek(wrapped.kek_id)
        blob = wrapped.blob
        if len(blob) != _BLOB_SIZE or blob[0] != _BLOB_VERSION:
            raise TamperedData(f"wrapped data key under key id {wrapped.kek_id!r} is malformed")
        nonce, sealed = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
        try:
            return AESGCM(kek).decrypt(nonce, sealed, _aad(wrapped.kek_id))
        except InvalidTag:
            raise TamperedData(
                f"wrapped data key under key id {wrapped.kek_id!r} does not authenticate"
            ) from None

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """Returns `wrapped` itself, once verified, when it is already under the current KEK."""
        dek = self.unwrap(wrapped)
        if wrapped.kek_id == self.current_kek_id:
            return wrapped
        return self.wrap(dek)

    def rotate(self) -> str:
        """Add a new KEK and make it current; older KEKs stay for unwrapping. Returns its id."""
        try:
            with self._locked():
                self._reload()
                kek_id = _new_kek_id(self._keys)
                keys = {**self._keys, kek_id: _Kek(os.urandom(KEK_SIZE), _now())}
                _write_atomic(self.path, _dump(kek_id, keys))
        except OSError as exc:
            raise _bad_file(self.path, f"cannot be rewritten ({exc.strerror})") from None
        self._reload()
        return kek_id

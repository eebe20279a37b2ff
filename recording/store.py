"""From a finished call to two verified, encrypted, WORM-locked copies, and back.

The order of steps is what makes a recording survive crashes and outages:

1. encode the capture to Ogg/Opus in the spool, encrypt it to `<id>.dgre.part`
   under a fresh data key, and remove the plaintext;
2. commit the database row (status SPOOLED, wrapped data key, hash), then
   rename the file to `<id>.dgre`; a crash between the two is repaired by
   `upload_pending`, which accepts a `.part` whose hash matches the row;
3. claim the recording (a lease in its row, `recording.leases`), so that only
   one uploader works on it;
4. upload each copy with its COMPLIANCE retention exactly once (`_put_copy`:
   look first, mark the attempt, conditional PUT; see `recording.versions`),
   read it back, compare the SHA-256, and commit that copy's version and hash;
   a copy already present with the right hash (an upload cut off after S3
   stored it) is adopted, not sent again;
5. only when both copies are verified is the row STORED and the local file removed.

Storage never sees plaintext audio or keys: only `<id>.dgre` bytes leave the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import urllib3
from minio.commonconfig import COMPLIANCE, Tags
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recording.crypto import (
    CryptoError,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
)
from recording.db.engine import as_utc
from recording.encode import CONTENT_TYPE, encode_call
from recording.errors import RecordingError, StorageError
from recording.keys import KeyWrapper, WrappedKey
from recording.leases import Clock, claim, claimable, lease_owner, release, wall_clock
from recording.models import Recording, RecordingStatus
from recording.retention import retain_until
from recording.storage import Copy, ensure_lifecycle, explain
from recording.storage_rules import RETENTION_TAG, retention_days, retention_tag
from recording.versions import AlreadyStored, ours, put_once, spares

log = logging.getLogger(__name__)

#: After a PUT whose outcome is unknown, storage must answer twice this far apart without
#: the object before the copy is sent again: a PUT storage held while frozen completes
#: within moments of it running again (seen on SeaweedFS), or not at all.
SETTLE_S = 3.0

#: Told which upload runs now ("upload of <id> to <bucket>"), None when it is over.
Watch = Callable[[str | None], None]
# What an unreachable, refusing or misbehaving store raises through the minio SDK.
_STORAGE_FAILURES = (S3Error, StorageError, OSError, ValueError, urllib3.exceptions.HTTPError)
_READ = 1024 * 1024


class RecordingNotFound(RecordingError):
    """No recording has that id."""


class RecordingUnavailable(RecordingError):
    """No copy of the recording could be read intact."""


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    agent: str
    recorded_at: datetime
    debtor_id: str | None = None
    client_id: str | None = None
    pauses: tuple[tuple[float, float], ...] = ()  # muted for card data, seconds into the call


@dataclass
class UploadReport:
    stored: list[str] = field(default_factory=list)
    waiting: int = 0
    errors: list[str] = field(default_factory=list)
    #: Each bucket (by label) that refused this round, and why in one plain sentence.
    problems: dict[str, str] = field(default_factory=dict)
    #: Recordings another uploader holds the lease of: not ours to send this round.
    held: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """Every store-wide failure of the round in one line (None: none); names each bucket."""
        return "; ".join(self.problems.values()) or None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_READ):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_file(spool: Path, recording_id: str) -> Path:
    return spool / f"{recording_id}.dgre"


def spool_call(
    sessions: sessionmaker[Session],
    spool: Path,
    keys: KeyWrapper,
    capture: Path,
    info: CallInfo,
    retention_days: int,
    now: datetime,
) -> Recording:
    """Encode and encrypt a finished capture into the spool and record it in the database."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sessions() as session:
        if session.scalar(select(Recording.id).where(Recording.call_id == info.call_id)):
            raise RecordingError(
                f"call {info.call_id} already has a recording",
                hint="each call is recorded once; use another call id for another call",
            )
    recording_id = uuid.uuid4().hex
    plain = spool / f"{recording_id}.ogg"
    final = spool_file(spool, recording_id)
    part = final.with_name(final.name + ".part")
    try:
        encoded = encode_call(capture, plain)
        dek = new_data_key()
        wrapped = keys.wrap(dek)
        with plain.open("rb") as src, part.open("wb") as dst:
            encrypted = encrypt_stream(src, dst, dek)
        _fsync(part)
    finally:
        plain.unlink(missing_ok=True)  # plaintext never outlives this call
    until = retain_until(info.recorded_at, retention_days)
    row = Recording(
        id=recording_id,
        call_id=info.call_id,
        agent=info.agent,
        debtor_id=info.debtor_id,
        client_id=info.client_id,
        recorded_at=info.recorded_at,
        duration_s=encoded.duration,
        channels=encoded.channels,
        content_type=CONTENT_TYPE,
        status=RecordingStatus.SPOOLED,
        object_key=f"{info.recorded_at:%Y/%m/%d}/{recording_id}.ogg.dgre",
        plaintext_size=encrypted.plaintext_length,
        ciphertext_size=encrypted.ciphertext_length,
        ciphertext_sha256=encrypted.ciphertext_sha256,
        retain_until=until,
        legal_hold=False,
        kek_id=wrapped.kek_id,
        wrapped_dek=wrapped.blob,
        upload_attempts=0,
        created_at=now,
        pauses_json=json.dumps([list(span) for span in info.pauses]),
    )
    with sessions() as session:
        session.add(row)
        session.commit()
    part.rename(final)
    log.info("recording spooled", extra={"call_id": info.call_id, "recording": recording_id})
    return row


def object_tags(row: Recording) -> Tags:
    """The lifecycle tag of a recording's objects: its own retention, or `hold`."""
    tags = Tags.new_object_tags()
    tags[RETENTION_TAG] = retention_tag(
        as_utc(row.recorded_at), as_utc(row.retain_until), row.legal_hold
    )
    return tags


class LeaseLost(RecordingError):
    """Another uploader took the recording over (our lease expired): we must not send it."""


def _put_copy(
    session: Session, copy: Copy, row: Recording, path: Path, owner: str, clock: Clock
) -> tuple[str, str]:
    """Upload one copy exactly once (or adopt the one already there); returns (version, sha256).

    The order is what keeps one version per bucket: look at the key's versions
    first and adopt ours if storage has it; if an earlier PUT's outcome is
    unknown (`<copy>_put_at` is set: a timeout, a crash) wait `SETTLE_S` while
    storage answers and look again, since such a PUT may still be completing;
    renew the lease, mark the PUT, and send it with `If-None-Match: *`, which
    storage refuses if any version arrived meanwhile. Storage answering with an
    error clears the mark (it kept nothing); no answer leaves it for the next try.
    """
    bucket, key, sha = copy.target.bucket, row.object_key, row.ciphertext_sha256
    mark = f"{copy.name}_put_at"
    version = ours(copy, key, sha)
    if version is None and getattr(row, mark) is not None:
        time.sleep(SETTLE_S)
        version = ours(copy, key, sha)
    if version is None:
        if not claim(session, row.id, owner, clock()):
            raise LeaseLost(f"recording {row.id} was taken over by another uploader")
        setattr(row, mark, clock())
        session.commit()  # before the PUT: a crash during it leaves the mark behind
        try:
            version = (
                put_once(
                    copy,
                    key,
                    path,
                    sha,
                    # The date comes from the recording's own recorded_at (in the row), never
                    # from the upload time or storage's clock: a late upload is not kept longer.
                    Retention(COMPLIANCE, as_utc(row.retain_until)),
                    object_tags(row),
                )
                or "null"
            )
        except AlreadyStored:
            version = ours(copy, key, sha)  # our earlier attempt landed after all
            if version is None:
                raise StorageError(
                    f"{copy.name} copy of {row.id}: storage refused the upload as a duplicate "
                    "but lists no version",
                    hint="check the bucket's versioning and object lock",
                ) from None
        except S3Error:
            setattr(row, mark, None)  # storage answered: it kept nothing
            session.commit()
            raise
    else:
        # An upload cut off after storage kept it: the object may lack its lifecycle tag.
        copy.client.set_object_tags(bucket, key, object_tags(row), version_id=version)
    stored = _read_sha256(copy, key, version)
    if stored != sha:
        raise StorageError(
            f"{copy.name} copy of {row.id} reads back with a different hash",
            hint="the store is corrupting data: check its disks before uploading more",
        )
    extra = spares(copy, key, version)
    if extra:
        # Locked like the kept one, so it cannot be deleted before its retention ends:
        # said loudly, failed by `recording verify`, deleted with it by `lifecycle.expire`.
        log.error(
            "ALERT recording stored more than once: %d spare version(s) in %s",
            len(extra),
            copy.target.label,
            extra={
                "recording": row.id,
                "kept": version,
                "spares": [v.version_id for v in extra],
            },
        )
    setattr(row, mark, None)
    return version, stored


def _read_sha256(copy: Copy, key: str, version: str | None) -> str:
    response = copy.client.get_object(copy.target.bucket, key, version_id=version)
    try:
        digest = hashlib.sha256()
        for block in response.stream(_READ):
            digest.update(block)
        return digest.hexdigest()
    finally:
        response.close()
        response.release_conn()


def _ready_file(spool: Path, row: Recording) -> Path | None:
    final = spool_file(spool, row.id)
    if final.exists():
        return final
    part = final.with_name(final.name + ".part")
    if part.exists() and _sha256_file(part) == row.ciphertext_sha256:
        part.rename(final)  # crashed between commit and rename: the file is whole
        return final
    return None


def upload_pending(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    now: datetime,
    limit: int = 20,
    *,
    owner: str | None = None,
    only: Sequence[str] | None = None,
    watch: Watch | None = None,
    clock: Clock = wall_clock,
) -> UploadReport:
    """Move spooled recordings to both copies; safe to run after any crash, any number of times,
    and beside any number of other uploaders.

    Each recording is claimed first (`recording.leases`); one another uploader
    holds is left to it and counted in `held`. `only` restricts the round to
    those recordings (`dialguard recording store` uploads its own, nothing
    else). `now` is when the round runs (a recording's `stored_at`, never
    before its `created_at`); leases follow `clock`, the real time, since
    other processes compare them. `watch` is told which upload runs, so the
    uploader's health can say which one hangs.

    A copy that fails for a reason of the whole store (unreachable, refusing
    writes, full, our clock off) is not tried again for the rest of the batch:
    each recording still records why it waits, without a request of its own.
    """
    owner = owner or lease_owner("upload")
    report = UploadReport()
    with sessions() as session:
        ids = list(only) if only is not None else claimable(session, clock(), owner, limit)
    state = _Round(owner, clock, watch or (lambda _: None))
    for recording_id in ids:
        with sessions() as session:
            if not claim(session, recording_id, owner, clock()):
                report.held.append(recording_id)
                continue
            try:
                _upload_one(session, recording_id, spool, copies, now, state, report)
            except LeaseLost:
                session.rollback()
                report.held.append(recording_id)
            finally:
                state.watch(None)
                session.rollback()  # whatever the failure left half-done is not ours to commit
                release(session, recording_id, owner)
    report.waiting = len(ids) - len(report.stored)
    return report


@dataclass
class _Round:
    """What one call of `upload_pending` carries from one recording to the next."""

    owner: str
    clock: Clock
    watch: Watch
    ruled: dict[str, set[int]] = field(default_factory=dict)  # classes with lifecycle rules
    broken: dict[str, str] = field(default_factory=dict)  # copy name -> why the store refused


def _upload_one(
    session: Session,
    recording_id: str,
    spool: Path,
    copies: tuple[Copy, Copy],
    now: datetime,
    state: _Round,
    report: UploadReport,
) -> None:
    row = session.get(Recording, recording_id)
    if row is None or row.status is not RecordingStatus.SPOOLED:
        return
    path = _ready_file(spool, row)
    if path is None:
        row.last_error = "spool file missing: the recording cannot be uploaded"
        report.errors.append(f"{row.id}: {row.last_error}")
        session.commit()
        return
    days = retention_days(as_utc(row.recorded_at), as_utc(row.retain_until))
    for copy in copies:
        if getattr(row, f"{copy.name}_sha256"):
            continue
        reason = state.broken.get(copy.name)
        if reason is None:
            state.watch(f"upload of {row.id} to {copy.target.label}")
            try:
                ruled = state.ruled.setdefault(copy.name, set())
                if days not in ruled:
                    # Each class's expiry rule is in place before its objects arrive.
                    ensure_lifecycle(copy.client, copy.target, {days})
                    ruled.add(days)
                version, sha = _put_copy(session, copy, row, path, state.owner, state.clock)
            except _STORAGE_FAILURES as exc:  # not LeaseLost: that ends our turn
                reason = _describe(exc, copy)
                if not isinstance(exc, RecordingError):  # the store, not this object
                    state.broken[copy.name] = reason
                    report.problems[copy.target.label] = reason
            finally:
                state.watch(None)
        if reason is not None:
            row.upload_attempts += 1
            row.last_error = f"{copy.name}: {reason}"[:500]
            report.errors.append(f"{row.id}: {row.last_error}")
            session.commit()
            continue
        setattr(row, f"{copy.name}_version", version)
        setattr(row, f"{copy.name}_sha256", sha)
        session.commit()
    if row.primary_sha256 and row.replica_sha256:
        row.status = RecordingStatus.STORED
        row.stored_at = max(now, as_utc(row.created_at))  # another host's clock may lag ours
        row.last_error = None
        session.commit()
        path.unlink(missing_ok=True)  # both copies verified: the spool may let go
        report.stored.append(row.id)
        log.info("recording stored twice", extra={"recording": row.id})


def _describe(exc: Exception, copy: Copy | None = None, writing: bool = True) -> str:
    """One plain sentence for an operator: what failed, and (where known) what to do."""
    if isinstance(exc, RecordingError):
        return str(exc)
    where = copy.target.label if copy is not None else "storage"
    if isinstance(exc, S3Error):
        return explain(exc, where, writing=writing)
    return f"storage unreachable at {where} ({type(exc).__name__})"


def _load(session: Session, recording_id: str) -> Recording:
    row = session.get(Recording, recording_id)
    if row is None:
        raise RecordingNotFound(f"no recording {recording_id}", hint="check the recording id")
    if row.status is RecordingStatus.DELETED or row.wrapped_dek is None or row.kek_id is None:
        raise RecordingUnavailable(
            f"recording {recording_id} was deleted at the end of its retention",
            hint="the deletion proof is in the audit log",
        )
    return row


@contextlib.contextmanager
def _downloaded(copy: Copy, row: Recording) -> Iterator[BinaryIO]:
    """The copy's ciphertext in a temp file, after its hash matched the database."""
    version = getattr(row, f"{copy.name}_version")
    expected = getattr(row, f"{copy.name}_sha256")
    with tempfile.TemporaryFile() as tmp:
        response = copy.client.get_object(copy.target.bucket, row.object_key, version_id=version)
        digest = hashlib.sha256()
        try:
            for block in response.stream(_READ):
                digest.update(block)
                tmp.write(block)
        finally:
            response.close()
            response.release_conn()
        if digest.hexdigest() != expected:
            raise StorageError(f"{copy.name} copy of {row.id} does not match its stored hash")
        tmp.seek(0)
        yield tmp


def fetch(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    recording_id: str,
    dst: BinaryIO,
) -> str:
    """Write the decrypted Ogg/Opus audio to `dst`; returns which copy served it.

    A copy that is missing, unreachable, altered (hash or GCM tag) is logged
    as an alert and the next one is used.
    """
    with sessions() as session:
        row = _load(session, recording_id)
    dek = keys.unwrap(WrappedKey(row.kek_id or "", row.wrapped_dek or b""))
    if row.status is RecordingStatus.SPOOLED:
        local = _ready_file(spool, row)
        if local is not None:
            with local.open("rb") as src:
                decrypt_stream(src, dst, dek)
            return "spool"
    failures = []
    for copy in copies:
        if not getattr(row, f"{copy.name}_sha256"):
            continue
        start = dst.tell() if dst.seekable() else 0
        try:
            with _downloaded(copy, row) as src:
                decrypt_stream(src, dst, dek)
            return copy.name
        except (*_STORAGE_FAILURES, CryptoError) as exc:
            reason = _describe(exc, copy, writing=False)
            failures.append(f"{copy.name}: {reason}")
            log.error(
                "ALERT recording copy unreadable",
                extra={"recording": recording_id, "copy": copy.name, "reason": reason},
            )
            if dst.seekable():
                dst.seek(start)
                dst.truncate()
    raise RecordingUnavailable(
        f"no intact copy of recording {recording_id} ({'; '.join(failures) or 'none uploaded'})",
        hint="check both storage endpoints; a recording is kept in two copies",
    )


@dataclass(frozen=True)
class CopyCheck:
    copy: str
    ok: bool
    detail: str


def verify(
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    recording_id: str,
) -> list[CopyCheck]:
    """Each copy present, its hash as recorded, it decrypts (every chunk's tag checks), and
    it is the only version of its key in its bucket."""
    with sessions() as session:
        row = _load(session, recording_id)
    dek = keys.unwrap(WrappedKey(row.kek_id or "", row.wrapped_dek or b""))
    checks = []
    for copy in copies:
        if not getattr(row, f"{copy.name}_sha256"):
            checks.append(CopyCheck(copy.name, False, "not uploaded yet"))
            continue
        try:
            with _downloaded(copy, row) as src, open(os.devnull, "wb") as sink:
                size = decrypt_stream(src, sink, dek)
            extra = spares(copy, row.object_key, getattr(row, f"{copy.name}_version"))
        except (*_STORAGE_FAILURES, CryptoError) as exc:
            checks.append(CopyCheck(copy.name, False, _describe(exc, copy, writing=False)))
            continue
        if extra:
            # One recording, one version per bucket: a second is a WORM-locked duplicate.
            checks.append(
                CopyCheck(
                    copy.name,
                    False,
                    f"hash matches, {size} bytes decrypt, but the bucket holds "
                    f"{len(extra)} extra version(s) of it: "
                    + ", ".join(str(v.version_id) for v in extra),
                )
            )
            continue
        checks.append(CopyCheck(copy.name, True, f"hash matches, {size} bytes decrypt"))
    return checks


__all__ = [
    "CallInfo",
    "Copy",
    "CopyCheck",
    "LeaseLost",
    "RecordingNotFound",
    "RecordingUnavailable",
    "UploadReport",
    "fetch",
    "spool_call",
    "upload_pending",
    "verify",
]


@dataclass(frozen=True)
class AudioInfo:
    recording_id: str
    size: int  # bytes of decrypted Ogg/Opus
    content_type: str


def audio_info(sessions: sessionmaker[Session], recording_id: str) -> AudioInfo:
    with sessions() as session:
        row = _load(session, recording_id)
        return AudioInfo(row.id, row.plaintext_size, row.content_type)


def read_audio_range(
    sessions: sessionmaker[Session],
    spool: Path,
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    recording_id: str,
    start: int,
    end: int,
) -> bytes:
    """Decrypted bytes `start..end` (inclusive) of a recording, fetching only the chunks needed.

    What a browser player's Range request asks for. Each chunk's GCM tag is
    checked; an altered or unreachable copy falls through to the next.
    """
    with sessions() as session:
        row = _load(session, recording_id)
    dek = keys.unwrap(WrappedKey(row.kek_id or "", row.wrapped_dek or b""))
    if row.status is RecordingStatus.SPOOLED and (local := _ready_file(spool, row)) is not None:
        with local.open("rb") as handle:

            def read_local(offset: int, length: int) -> bytes:
                handle.seek(offset)
                return handle.read(length)

            return decrypt_range(read_local, dek, start, end)
    failures = []
    for copy in copies:
        version = getattr(row, f"{copy.name}_version")
        if not getattr(row, f"{copy.name}_sha256"):
            continue

        def read_s3(
            offset: int, length: int, copy: Copy = copy, version: str | None = version
        ) -> bytes:
            response = copy.client.get_object(
                copy.target.bucket,
                row.object_key,
                offset=offset,
                length=length,
                version_id=version,
            )
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        try:
            return decrypt_range(read_s3, dek, start, end)
        except (*_STORAGE_FAILURES, CryptoError) as exc:
            reason = _describe(exc, copy, writing=False)
            failures.append(f"{copy.name}: {reason}")
            log.error(
                "ALERT recording copy unreadable",
                extra={"recording": recording_id, "copy": copy.name, "reason": reason},
            )
    raise RecordingUnavailable(
        f"no intact copy of recording {recording_id} ({'; '.join(failures) or 'none uploaded'})",
        hint="check both storage endpoints; a recording is kept in two copies",
    )

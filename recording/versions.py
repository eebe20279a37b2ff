"""One object version per recording per bucket: the S3 side of exactly-once.

In a versioned, WORM-locked bucket every PUT that storage completes is a new
version that nobody can delete before its retention ends, so a duplicate
cannot be cleaned up: it has to be prevented. What SeaweedFS 4.48 was seen
doing (tests/recording/test_versions.py keeps checking it):

- a PUT the client gave up on (read timeout while storage was frozen by
  SIGSTOP mid-request) is still completed by storage once it runs again:
  the client saw an error, the bucket got a version;
- urllib3 re-sent such a PUT on its own (PUT counts as idempotent there),
  and each re-send that was still open when storage resumed became one
  more version: this is where the spare copies came from;
- `If-None-Match: *` on PutObject is honoured, decided when the body has
  arrived (a slow PUT that began first is refused if another finished
  first), and atomically: of twelve concurrent conditional PUTs of one key,
  one is stored and eleven get `412 PreconditionFailed`.

So a copy is sent only with `If-None-Match: *` (`put_once`), never re-sent
by the HTTP client (`recording.storage.make_client`), and before any send
the key's versions are listed so that one already there is adopted
(`ours`). MinIO and AWS S3 honour the same header. Should a second version
appear all the same (a store that ignores the header), `spares` names it:
the uploader logs an ALERT, `dialguard recording verify` fails, and the
end-of-retention job deletes every version of the key, not only the
recorded one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from minio.commonconfig import Tags
from minio.datatypes import Object
from minio.error import S3Error
from minio.helpers import genheaders
from minio.retention import Retention

from recording.errors import StorageError
from recording.storage import Copy

log = logging.getLogger(__name__)

SHA_META = "sha256"


class AlreadyStored(StorageError):
    """A conditional PUT was refused: a version of the key exists already."""


@dataclass(frozen=True)
class Version:
    version_id: str | None
    last_modified: datetime | None
    delete_marker: bool


def listed(copy: Copy, key: str) -> list[Version]:
    """Every version of exactly `key` (delete markers included), oldest first."""
    found = [
        _version(obj)
        for obj in copy.client.list_objects(copy.target.bucket, prefix=key, include_version=True)
        if obj.object_name == key
    ]
    return sorted(found, key=lambda v: (v.last_modified is None, v.last_modified))


def _version(obj: Object) -> Version:
    return Version(obj.version_id, obj.last_modified, bool(obj.is_delete_marker))


def stored(copy: Copy, key: str) -> list[Version]:
    """The versions of `key` that hold data (not delete markers), oldest first."""
    return [v for v in listed(copy, key) if not v.delete_marker]


def sha_of(copy: Copy, key: str, version: str | None) -> str | None:
    """The SHA-256 we attached to a version when we sent it (None if none)."""
    meta = copy.client.stat_object(copy.target.bucket, key, version_id=version).metadata or {}
    value = meta.get(f"x-amz-meta-{SHA_META}")
    return str(value) if value is not None else None


def ours(copy: Copy, key: str, sha256: str) -> str | None:
    """The oldest version of `key` that carries our hash, or None if the key has no version.

    A version with another hash under a key only we write means the store
    altered it (or someone wrote there): sending ours beside it would only
    hide that, so it is an error for an operator.
    """
    versions = stored(copy, key)
    for version in versions:
        if sha_of(copy, key, version.version_id) == sha256:
            return version.version_id or ""
    if versions:
        raise StorageError(
            f"{copy.target.label}/{key} holds {len(versions)} version(s), none with our hash",
            hint="someone else wrote to this key, or storage altered it: compare with the spool",
        )
    return None


def put_once(
    copy: Copy,
    key: str,
    path: Path,
    sha256: str,
    retention: Retention,
    tags: Tags,
) -> str | None:
    """PUT `path` under `key` only if the key has no version yet; returns the new version id.

    Raises `AlreadyStored` when storage refuses because one exists (maybe our
    own earlier attempt, which the caller then adopts). The body goes in one
    PUT (up to 5 GiB), not as a multipart upload, because the SDK's multipart
    completion cannot carry the condition; a three-hour call is about 32 MB.
    """
    headers = genheaders({SHA_META: sha256}, None, tags, retention, False)
    headers["Content-Type"] = "application/octet-stream"
    headers["If-None-Match"] = "*"
    # The SDK's public put_object files unknown headers under x-amz-meta-; the
    # condition must reach storage as a real header, hence its PutObject call.
    try:
        result = copy.client._put_object(copy.target.bucket, key, path.read_bytes(), headers)
    except S3Error as exc:
        if exc.code in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise AlreadyStored(
                f"{copy.target.label}/{key} exists already", hint="adopt the stored version"
            ) from exc
        raise
    return result.version_id


def spares(copy: Copy, key: str, keep: str | None) -> list[Version]:
    """Versions of `key` besides `keep`: each is a second copy that should not exist."""
    return [v for v in stored(copy, key) if v.version_id != keep]

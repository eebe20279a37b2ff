"""Errors of the recording package.

Each carries a `hint`: the one thing an operator should do about it, so that
`dialguard doctor` and `dialguard up` can print problem and fix on one line.
"""

from __future__ import annotations


class HintedError(Exception):
    """An error that knows the operator's fix: every package's errors derive from it.

    It lives here because `recording` is the root of the import graph; the
    command line and the API catch it once instead of one class per package.
    """

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class RecordingError(HintedError):
    """Base of every error raised by `recording`."""


class StorageError(RecordingError):
    """Object storage cannot be used as configured."""


class StorageUnavailable(StorageError):
    """The S3 endpoint does not answer, or refuses our credentials."""


class BucketMissing(StorageError):
    """A configured bucket does not exist and we are not allowed to create it."""


class ObjectLockMissing(StorageError):
    """A bucket exists without object lock: recordings there would not be WORM."""


class EmbeddedStorageError(StorageError):
    """The embedded SeaweedFS could not be started."""


class DatabaseError(RecordingError):
    """The database cannot be reached or is not at the expected schema."""

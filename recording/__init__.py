"""Capture, encode, encrypt, store, retain and retrieve call recordings."""

from recording.db.engine import Base, make_engine, redact_url, session_factory
from recording.db.heartbeats import Heartbeat, live_instances, run_with_heartbeat
from recording.embedded_s3 import EmbeddedS3, find_weed, running_instance
from recording.errors import (
    BucketMissing,
    DatabaseError,
    EmbeddedStorageError,
    ObjectLockMissing,
    RecordingError,
    StorageError,
    StorageUnavailable,
)
from recording.storage import S3Target, check_bucket, ensure_bucket, make_client, split_endpoint
from recording.uploader import run_uploader

__all__ = [
    "Base",
    "BucketMissing",
    "DatabaseError",
    "EmbeddedS3",
    "EmbeddedStorageError",
    "Heartbeat",
    "ObjectLockMissing",
    "RecordingError",
    "S3Target",
    "StorageError",
    "StorageUnavailable",
    "check_bucket",
    "ensure_bucket",
    "find_weed",
    "live_instances",
    "make_client",
    "make_engine",
    "redact_url",
    "run_uploader",
    "run_with_heartbeat",
    "running_instance",
    "session_factory",
    "split_endpoint",
]

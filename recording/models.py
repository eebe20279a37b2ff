"""The recordings table: one row per call recording, the source of truth for both copies."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Enum, Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recording.db.engine import Base


class RecordingStatus(enum.StrEnum):
    SPOOLED = "spooled"  # encrypted on local disk, waiting for storage
    STORED = "stored"  # both copies uploaded and verified; local file removed
    DELETED = "deleted"  # retention over, data key destroyed


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(128), unique=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    debtor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    duration_s: Mapped[float] = mapped_column(Float)
    channels: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[RecordingStatus] = mapped_column(
        Enum(
            RecordingStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        index=True,
    )
    object_key: Mapped[str] = mapped_column(String(255))
    plaintext_size: Mapped[int] = mapped_column(Integer)
    ciphertext_size: Mapped[int] = mapped_column(Integer)
    ciphertext_sha256: Mapped[str] = mapped_column(String(64))
    primary_version: Mapped[str | None] = mapped_column(String(128))
    replica_version: Mapped[str | None] = mapped_column(String(128))
    primary_sha256: Mapped[str | None] = mapped_column(String(64))
    replica_sha256: Mapped[str | None] = mapped_column(String(64))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    kek_id: Mapped[str | None] = mapped_column(String(64))
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    upload_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: JSON [[start, end], ...]: seconds muted while card details were read out (PCI DSS).
    pauses_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    #: Who may upload the recording now (`uploader@host:pid`) and until when: taken with a
    #: conditional UPDATE (`recording.leases`), so two uploaders never send the same copy.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When a PUT of that copy was sent whose outcome is not known yet (a timeout, a crash):
    #: such an attempt may still land, so nobody sends the copy again before checking.
    primary_put_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replica_put_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

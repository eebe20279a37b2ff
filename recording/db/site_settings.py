"""Site settings an admin changes from the console while everything runs.

Settings from the environment are read once at start; these are read at the
moment they matter (the dialer's decision before each call, the QA worker's
next batch), so a change takes effect without a restart. The table lives
here, at the root of the import graph, because the dialer and the workers
read it and none of them may import the API that writes it. A value that is
absent means "the environment setting applies".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from recording.db.engine import Base

#: The call policy preset (dialer.policy.PRESETS) the dialer decides with.
POLICY_PRESET = "policy_preset"
#: The QA rule pack the QA worker scores with: "shipped:NAME" or "uploaded:ID".
QA_PACK = "qa_pack"


class SiteSetting(Base):
    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def read_setting(session: Session, key: str) -> str | None:
    row = session.get(SiteSetting, key)
    return None if row is None else row.value


def write_setting(session: Session, key: str, value: str, by: str, now: datetime) -> None:
    """Set `key`; the caller commits (with the audit entry that records the change)."""
    row = session.get(SiteSetting, key)
    if row is None:
        session.add(SiteSetting(key=key, value=value, updated_by=by, updated_at=now))
    else:
        row.value, row.updated_by, row.updated_at = value, by, now
    session.flush()

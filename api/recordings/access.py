"""The one export rule: who may see, play and download a recording, and playbacks audited once.

The API (`GET /api/v1/recordings/{id}/audio`) and the console's call page
both decide here, so they cannot drift apart:

- **see and play**: QA staff, supervisors and admins any recording; an
  auditor only their client's; an agent only their own calls. A recording
  someone may not see does not exist for them (the same 404 as an unknown id).
- **download** (an attachment, a copy that leaves Dialguard): supervisors and
  admins only.
- both need a reason, which goes to the audit log with the access.

A browser's player fetches one playback in many Range requests (seeking,
buffering). Each playback has an id (`playback`, chosen by the console's
call page, or by an API client); the first request of a playback is audited
with its reason, the rest of the same playback are not: one entry per
playback, not per Range request. A playback id is bound to its account,
recording and action, and lasts a working day.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api.accounts.models import Role, User
from api.audit.chain import record
from recording.db.engine import Base, as_utc
from recording.models import Recording

PLAYERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.AGENT)
DOWNLOADERS = (Role.SUPERVISOR, Role.ADMIN)
PLAYBACK_LIFETIME = timedelta(hours=10)
PLAYBACK_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


def may_see(user: User, row: Recording | None) -> bool:
    """Whether `user` may know this recording exists (and so play it)."""
    if row is None or user.role not in PLAYERS:
        return False
    if user.role is Role.AGENT:
        return row.agent == user.username
    if user.role is Role.AUDITOR:
        return user.client_id is not None and row.client_id == user.client_id
    return True


def may_download(user: User) -> bool:
    return user.role in DOWNLOADERS


class Playback(Base):
    """One playback (or download) of a recording, audited once however many requests it takes."""

    __tablename__ = "playbacks"

    #: SHA-256 of the playback id the client sent.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    recording_id: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlaybackMismatch(Exception):
    """A playback id reused for another recording, account or action."""


def audit_access(
    sessions: sessionmaker[Session],
    user: User,
    recording_id: str,
    action: str,
    reason: str,
    now: datetime,
    playback: str | None,
    detail: dict[str, object],
) -> bool:
    """Audit a play or download, once per playback; True when this request wrote the entry."""
    if playback is None:
        with sessions() as session:
            record(session, user.username, action, recording_id, now, reason=reason, detail=detail)
        return True
    id_hash = hashlib.sha256(playback.encode()).hexdigest()
    for _ in range(5):
        with sessions() as session:
            seen = session.get(Playback, id_hash)
            if seen is not None:
                if (seen.recording_id, seen.username, seen.action) != (
                    recording_id,
                    user.username,
                    action,
                ):
                    raise PlaybackMismatch("this playback id belongs to another playback")
                if now - as_utc(seen.started_at) <= PLAYBACK_LIFETIME:
                    return False
                session.delete(seen)  # an old id used again: a new playback
                session.flush()
            session.add(
                Playback(
                    id_hash=id_hash,
                    recording_id=recording_id,
                    username=user.username,
                    action=action,
                    started_at=now,
                )
            )
            try:
                session.flush()
            except IntegrityError:  # a parallel Range request of the same playback won
                session.rollback()
                continue
            try:
                record(
                    session,
                    user.username,
                    action,
                    recording_id,
                    now,
                    reason=reason,
                    detail={**detail, "playback": id_hash[:16]},
                    attempts=1,
                )
            except RuntimeError:  # the chain moved on; the playback row was rolled back too
                continue
            return True
    raise RuntimeError("audit log is too contended to append to")

"""Retrieval requests: "pull the recording for case X", due the same working day.

The agencies promise their client banks that a requested recording is
delivered on the working day it is asked for (调取录音反馈时间：工作日当天).
A request made after the working day ends, or on a holiday, is due at the end
of the next working day. The due-time rule is pure; the table and the late
report sit beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from dialer.workdays import WorkdayCalendar, load_calendar
from recording.db.engine import Base, as_utc
from recording.models import Recording  # noqa: F401  (the table our foreign key names)


def due_at(
    requested_at: datetime, tz: ZoneInfo, calendar: WorkdayCalendar, day_end: time
) -> datetime:
    local = requested_at.astimezone(tz)
    day = local.date()
    if not (calendar.is_working_day(day) and local.time() < day_end):
        day = calendar.next_working_day(day + timedelta(days=1))
    return datetime.combine(day, day_end, tzinfo=tz)


@dataclass(frozen=True)
class WorkingDay:
    """The site's working day: its zone, its calendar and when it ends."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    calendar: WorkdayCalendar = field(default_factory=load_calendar)
    end: time = time(18, 0)

    def due(self, requested_at: datetime) -> datetime:
        return due_at(requested_at, self.tz, self.calendar, self.end)


class RetrievalRequest(Base):
    __tablename__ = "retrieval_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))  # the case, debtor or call asked about
    recording_id: Mapped[str | None] = mapped_column(ForeignKey("recordings.id"))
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_by: Mapped[str | None] = mapped_column(String(64))
    #: The requester's client (an auditor's); its requests are answered with its recordings only.
    client_id: Mapped[str | None] = mapped_column(String(64))


def is_late(request: RetrievalRequest, now: datetime) -> bool:
    finished = as_utc(request.fulfilled_at) if request.fulfilled_at else now
    return finished > as_utc(request.due_at)


def late_requests(session: Session, now: datetime) -> list[RetrievalRequest]:
    """Every request answered after its due time, or still open past it."""
    rows = session.scalars(
        select(RetrievalRequest)
        .where(RetrievalRequest.due_at < now)
        .order_by(RetrievalRequest.due_at)
    ).all()
    return [row for row in rows if is_late(row, now)]

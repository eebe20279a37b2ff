"""What request handlers are given: clients built once at start, injected, never global."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.retrieval import WorkingDay
from recording.keys import KeyWrapper
from recording.store import Copy


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    sessions: sessionmaker[Session]
    spool: Path
    copies: tuple[Copy, Copy]
    keys: KeyWrapper = field(repr=False)
    clock: Callable[[], datetime] = _utcnow
    working_day: WorkingDay = field(default_factory=WorkingDay)
    phone_region: str = "CN"  # for numbers typed without a country code
    require_totp: bool = True  # supervisors and admins need a one-time code on the console

"""What a dialer process is given besides SIP: `CallSite`.

Built by whoever starts the process from the one settings object
(`api.wiring.dialer_site`), or by the API for the decisions its pages show
(`api.web.call_check.call_site`): the database, the call policy, the site's
key for hashing numbers, and the recording spool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from dialer.caller_ids import Health
from dialer.number_status import Recheck
from dialer.policy import Policy
from dialer.workdays import WorkdayCalendar
from recording.keys import KeyWrapper


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallSite:
    sessions: sessionmaker[Session]
    policy: Policy
    site_tz: ZoneInfo
    calendar: WorkdayCalendar | None
    number_secret: bytes = field(repr=False)
    spool: Path
    keys: KeyWrapper = field(repr=False)
    retention_days: int
    # clients that require longer than retention_days (DIALGUARD_CLIENT_RETENTION)
    client_retention: Mapping[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow
    recheck: Recheck = field(default_factory=Recheck)
    caller_id_health: Health = field(default_factory=Health)

"""What request handlers are given: clients built once at start, injected, never global."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from api.recordings.retrieval import WorkingDay
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
    policy_preset: str = "cn-default"  # DIALGUARD_POLICY_PRESET, until an admin picks one
    qa_pack: str = "cn-collections"  # DIALGUARD_QA_PACK, until an admin picks one
    # The key the dialer, the do-not-call lists and the debtor records hash numbers with;
    # None where none is configured: the pages and endpoints that need it answer 503.
    number_secret: bytes | None = field(default=None, repr=False)


def services_of(request: Request) -> Services:
    """The services `create_app` put on the app, typed for the handler that asks."""
    services: Services = request.app.state.services
    return services

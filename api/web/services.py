"""What request handlers are given: clients built once at start, injected, never global."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from api.accounts.sessions import Limits
from api.recordings.retrieval import WorkingDay
from api.web.proxies import Network
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
    allow_vanity_numbers: bool = False  # DIALGUARD_ALLOW_VANITY_NUMBERS: letters dialed as digits
    require_totp: bool = True  # supervisors and admins need a one-time code on the console
    policy_preset: str = "cn-default"  # DIALGUARD_POLICY_PRESET, until an admin picks one
    # The language of a reader whose profile and browser name none we speak
    # (DIALGUARD_LANGUAGE, else by the policy preset: `api.i18n.site_default`).
    language: str = "en"
    qa_pack: str = "cn-collections"  # DIALGUARD_QA_PACK, until an admin picks one
    # The key the dialer, the do-not-call lists and the debtor records hash numbers with;
    # None where none is configured: the pages and endpoints that need it answer 503.
    number_secret: bytes | None = field(default=None, repr=False)
    # The key of the audit log's MACs (DIALGUARD_AUDIT_KEY_FILE); None: MACs are not checked.
    # The sessions above carry it too (`api.audit.chain.with_audit_key`), to write them.
    audit_key: bytes | None = field(default=None, repr=False)
    login_limits: Limits = field(default_factory=Limits)
    # DIALGUARD_RETENTION_MAX_DAYS and DIALGUARD_CLIENT_RETENTION_MAX
    retention_max_days: int = 3650
    client_retention_max: dict[str, int] = field(default_factory=dict)
    # DIALGUARD_TRUSTED_PROXIES: whose X-Forwarded-For names the client (`api.web.proxies`)
    trusted_proxies: tuple[Network, ...] = ()

    def max_retention_days(self, client_id: str | None) -> int:
        if client_id is None:
            return self.retention_max_days
        return self.client_retention_max.get(client_id, self.retention_max_days)


def services_of(request: Request) -> Services:
    """The services `create_app` put on the app, typed for the handler that asks."""
    services: Services = request.app.state.services
    return services

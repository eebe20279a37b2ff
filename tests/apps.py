"""The API and console as `dialguard up` serves them, on a test's real database and storage."""

from __future__ import annotations

import socket

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.anchors import Anchorer
from api.web.app import create_app
from api.web.auth import issue_token
from api.web.health import HealthChecker
from api.web.services import Services
from tests.factories import T0
from tests.helpers import free_port

ROLES = ("agent", "qa", "supervisor", "admin", "auditor")


def make_app(
    services: Services, engine: Engine, docs: bool = True, anchorer: Anchorer | None = None
) -> FastAPI:
    checker = HealthChecker(
        engine,
        services.sessions,
        (services.copies[0].target, services.copies[1].target),
        ("127.0.0.1", free_port(socket.SOCK_DGRAM)),  # no SIP here: the dialer shows as down
        {},
    )
    return create_app(checker, services, docs=docs, anchorer=anchorer)


def role_tokens(services: Services, name: str) -> dict[str, str]:
    """One account per role (`<role>1`; the auditor is bank-a's) and its API token."""
    tokens = {}
    with services.sessions() as session:
        for role in ROLES:
            client = "bank-a" if role == "auditor" else None
            user = create_user(session, f"{role}1", role, "a long passphrase", T0, client=client)
            tokens[role] = issue_token(session, user, name, T0)
    return tokens

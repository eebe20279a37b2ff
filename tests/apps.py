"""The API and console as `dialguard up` serves them, on a test's real database and storage."""

from __future__ import annotations

import socket

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.app import create_app
from api.health import HealthChecker
from api.services import Services
from tests.helpers import free_port


def make_app(services: Services, engine: Engine) -> FastAPI:
    checker = HealthChecker(
        engine,
        services.sessions,
        (services.copies[0].target, services.copies[1].target),
        ("127.0.0.1", free_port(socket.SOCK_DGRAM)),  # no SIP here: the dialer shows as down
        {},
    )
    return create_app(checker, services)

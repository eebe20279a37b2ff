"""Fixtures for the console's tests (`tests.api.console_site`)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from api.web.services import Services
from tests.api.console_site import Console


@pytest.fixture
def console(services: Services, engine: Engine) -> Console:
    return Console(services, engine)

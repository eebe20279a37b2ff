"""The dialer's site for tests: an agent with a softphone password, keys and spool in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from dialer.softphones import set_sip_password
from recording.db.engine import session_factory
from tests.dialer.running import Parts, office_hours


@pytest.fixture
def parts(engine: Engine, database_url: str, tmp_path: Path) -> Parts:
    made = Parts(database_url, tmp_path / "data")
    with session_factory(engine)() as session:
        set_sip_password(session, "agent1", "dialguard", "secret", office_hours())
    return made

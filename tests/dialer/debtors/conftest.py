"""A sealer with its own key ring and number secret, for the debtor tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dialer.debtors import Sealer
from recording.keys import FileKeyRing


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(FileKeyRing(tmp_path / "keys" / "kek.json"), os.urandom(32))

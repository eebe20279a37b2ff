"""pjsua2 stays in the processes that run SIP: the CLI, the API, the policy and the debtor
records import without it (its import starts a native library and is slow)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["dialer.numbers", "dialer.policy", "dialer.debtors", "api.cli.main", "api.web.app"]
)
def test_importing_does_not_load_pjsua2(module: str) -> None:
    code = f"import sys, {module}; print('pjsua2' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False", f"{module} loads pjsua2"

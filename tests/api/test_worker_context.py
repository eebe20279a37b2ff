"""The dialer workers' forkserver preloads modules that exist.

The forkserver skips a preload module it cannot import without a word, and
each worker would then import it (and what it pulls in) on its own: 100
workers would hold 100 private copies of what they should share.
"""

from __future__ import annotations

import importlib.util

from api.cli.worker_context import PRELOAD, worker_context


def test_every_preloaded_module_exists_and_the_freeze_comes_last() -> None:
    missing = [name for name in PRELOAD if importlib.util.find_spec(name) is None]
    assert missing == []
    assert PRELOAD[-1] == "api.cli.prefork_freeze"  # frozen after everything is imported


def test_workers_start_from_the_forkserver() -> None:
    assert worker_context().get_start_method() == "forkserver"

"""`dialguard up`'s supervisor keeps the edge: a frozen Kamailio (SIGSTOP: it hangs, it
does not exit) is killed after 10 s without an answer to OPTIONS and started again, with
a log line and a restart the status page lists."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import socket
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.cli.supervisor import HANG_AFTER_S, Child, Supervisor, run_edge_child, sip_answers
from api.restarts import read_restarts, restarts_file
from api.settings import Settings
from tests.dialer.edge.conftest import migrated_sqlite
from tests.helpers import free_port


@pytest.mark.slow
def test_a_hung_edge_is_killed_and_started_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(
        data_dir=data,
        database_url=migrated_sqlite(data),
        sip_port=free_port(socket.SOCK_DGRAM),
        sip_tls_port=free_port(),
        edge_secret=SecretStr(secrets.token_hex(32)),
    )
    rpc = free_port()
    child = Child("sip-edge", functools.partial(run_edge_child, 0, rpc), probe=sip_answers)
    supervisor = Supervisor(settings, [child])
    supervisor.start_all()
    pgid_file = data / "edge" / "kamailio.pgid"
    try:

        def tend_until(done: object, limit: float) -> bool:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                supervisor.tend()
                if callable(done) and done():
                    return True
                time.sleep(0.5)
            return False

        assert tend_until(lambda: child.answered, 30)
        first = int(pgid_file.read_text())
        os.killpg(first, signal.SIGSTOP)
        frozen = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="api.cli.supervisor"):
            assert tend_until(
                lambda: (
                    pgid_file.exists()
                    and int(pgid_file.read_text()) != first
                    and sip_answers(settings)
                ),
                HANG_AFTER_S + 60,  # a loaded host takes its time to spawn a child
            )
        assert time.monotonic() - frozen >= HANG_AFTER_S
        assert "child stopped answering" in caplog.text
        assert [(r.child, r.why) for r in read_restarts(restarts_file(data))] == [
            ("sip-edge", "hung")
        ]
    finally:
        supervisor.stop_all()

"""The console's status page shows the edge's bans, read live from a real Kamailio, and the
children the supervisor restarted (a hung edge among them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from api.restarts import record_restart, restarts_file
from dialer.edge.config import EdgeBans
from tests.api.console_site import Console
from tests.dialer.edge.conftest import StartEdge, start_edge
from tests.dialer.edge.sipclient import Agent

__all__ = ["start_edge"]  # the edge suite's fixture, used here as is


def test_the_status_page_lists_bans_and_restarts(
    console: Console, start_edge: StartEdge, tmp_path: Path
) -> None:
    supervisor = console.supervisor()
    assert "No SIP edge was started with this API." in supervisor.get("/status").text
    edge = start_edge(workers=1, bans=EdgeBans(login_failures=2))
    console.app.state.edge_rpc_port = edge.config.rpc_port  # as `dialguard up` sets it
    assert "No source is banned." in supervisor.get("/status").text
    for attempt in range(2):
        guesser = Agent("127.0.0.1", edge.port, "bob", f"guess-{attempt}", source="127.0.0.5")
        try:
            guesser.register()
        finally:
            guesser.close()
    page = supervisor.get("/status").text
    assert '<tr class="ban"><td translate="no">127.0.0.5</td><td translate="no">bob</td>' in page
    assert "failed logins" in page
    path = restarts_file(tmp_path)
    record_restart(path, "sip-edge", "hung", datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    console.app.state.restarts_path = path
    page = supervisor.get("/status").text
    assert "sip-edge</span>: stopped answering, restarted" in page
    edge.process.stop()
    assert "The SIP edge does not answer" in supervisor.get("/status").text

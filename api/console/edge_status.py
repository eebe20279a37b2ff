"""The status page's SIP edge card: who the edge bans now, and children restarted lately.

Read when the page is shown: the bans from Kamailio's JSON-RPC on
127.0.0.1 (`dialer.edge.bans`), the restarts from the supervisor's file
(`api.restarts`). Either may be missing (an API started without
`dialguard up`, an edge restarting): the card says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.restarts import Restart, read_restarts
from dialer.edge.bans import Ban, current_bans


@dataclass(frozen=True)
class EdgeStatus:
    running: bool  # `dialguard up` started an edge for this API
    answering: bool = False  # its RPC answered just now
    bans: list[Ban] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)


def edge_status(state: Any) -> EdgeStatus:
    port = getattr(state, "edge_rpc_port", None)
    path = getattr(state, "restarts_path", None)
    restarts = read_restarts(path) if isinstance(path, Path) else []
    if not port:
        return EdgeStatus(running=False, restarts=restarts)
    try:
        bans = current_bans(int(port), timeout=1.0)
    except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError):
        return EdgeStatus(running=True, answering=False, restarts=restarts)
    return EdgeStatus(running=True, answering=True, bans=bans, restarts=restarts)

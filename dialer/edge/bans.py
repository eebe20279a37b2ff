"""Who the edge has banned right now, read from Kamailio's JSON-RPC (htable.dump).

For the console's status page: an operator sees which source is locked
out, and of which account, without reading Kamailio's log. Read-only; the
edge lifts each ban itself when it expires.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

#: htable name -> what the ban is for (see dialer.edge.config).
TABLES = {"ipban": "flood", "pairban": "login", "srcban": "login, all accounts"}


@dataclass(frozen=True)
class Ban:
    kind: str  # "flood", "login", "login, all accounts"
    source: str
    account: str | None  # a login ban of one account from one source


def _names(node: Any) -> Iterator[str]:
    """Every item name in an htable.dump answer, whatever its nesting (it varies by version)."""
    if isinstance(node, dict):
        if "name" in node and isinstance(node["name"], str) and "value" in node:
            yield node["name"]
        for value in node.values():
            yield from _names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _names(item)


def rpc(port: int, method: str, params: list[Any], timeout: float = 2.0) -> Any:
    """One JSON-RPC call to the edge on 127.0.0.1; its `result`."""
    answer = httpx.post(
        f"http://127.0.0.1:{port}/RPC",
        json={"jsonrpc": "2.0", "method": method, "params": params, "id": 1},
        timeout=timeout,
    )
    answer.raise_for_status()
    body = answer.json()
    if "error" in body:
        raise httpx.HTTPError(str(body["error"].get("message", "rpc error")))
    return body.get("result")


def current_bans(port: int, timeout: float = 2.0) -> list[Ban]:
    """The edge's bans now; an error (httpx.HTTPError, OSError) when the edge does not answer."""
    bans: list[Ban] = []
    for table, kind in TABLES.items():
        for name in _names(rpc(port, "htable.dump", [table], timeout)):
            source, _, account = name.partition("|")
            bans.append(Ban(kind, source, account or None))
    return sorted(bans, key=lambda ban: (ban.kind, ban.source, ban.account or ""))

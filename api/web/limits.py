"""What every request must be before any handler reads it: a small body, printable parameters.

Every JSON body this API takes is a few kilobytes; a megabyte is already a
client gone wrong or an attempt to exhaust memory. The bulk debtor import is
the exception and keeps its own, larger limit. The body is counted as it
arrives, so a chunked upload that never declares its length is stopped too.

A query string or path holding a control character (a NUL, an escape) is
refused with 422 by `InputGuard`, whatever the endpoint: no handler, no
database and no log ever sees it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.web.params import has_control

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1024 * 1024


class BodyLimit:
    def __init__(
        self, app: ASGIApp, limit: int = DEFAULT_LIMIT, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        if declared:
            await self.app(scope, receive, send)  # the server stops a body longer than declared
            return
        # No declared length (chunked): read it here, counting, and hand it on whole. A
        # handler would turn an error raised while it reads into a vague 400.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._refuse(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": whole, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        log.warning(
            "request body refused: over the limit",
            extra={"path": scope["path"], "method": scope["method"], "limit": limit},
        )
        await send_problem(
            send, 413, "Too large", f"the request body is larger than {_size(limit)}"
        )


async def send_problem(send: Send, status: int, title: str, detail: str) -> None:
    """A problem+json answer sent before the app (and its exception handlers) is reached."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _bad_parameter(scope: Scope) -> str | None:
    """The name of the first query parameter (or the path) holding a control character."""
    if has_control(scope.get("path", "")):
        return "the path"
    raw = scope.get("query_string", b"").decode("utf-8", "replace")
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if has_control(name) or has_control(value):
            # the parameter's name only if it is printable itself; never its value
            return "a query parameter" if has_control(name) else f"query parameter `{name[:64]}`"
    return None


class InputGuard:
    """422 for a query string or path with a control character, before any handler runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = _bad_parameter(scope)
            if where is not None:
                log.warning(
                    "request refused: control character in %s",
                    where,
                    extra={"path": scope["path"].encode("unicode_escape").decode()[:200]},
                )
                await send_problem(
                    send, 422, "Invalid input", f"{where} must not hold control characters"
                )
                return
        await self.app(scope, receive, send)


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit // (1024 * 1024)} MB"
    return f"{limit // 1024} KB"

"""Security headers on every response, and the API docs served from Dialguard's own assets.

Every answer (console page, API JSON, audio, error, docs) carries a
Content-Security-Policy that allows scripts and styles only from Dialguard
itself or with the response's own nonce, forbids framing (clickjacking:
`frame-ancestors 'none'`), and sends no referrer; `X-Content-Type-Options:
nosniff` keeps a browser from reading an upload or a transcript as a script.
Templates put `nonce="{{ csp_nonce }}"` on their inline `<script>` and `<style>`;
the agents' pages' `oncopy="return false"` (and the like) is admitted by its hash.

`/docs` is Swagger UI from the `fastapi-offline` package's copy, served under
`/docs-assets`: no CDN, nothing fetched from outside. `DIALGUARD_API_DOCS=false`
turns it off (the OpenAPI document stays at `/openapi.json`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_ASSETS = "/docs-assets"
#: The one inline event handler the console uses (agents' pages: `oncopy="return false"`...),
#: admitted by its hash alone ('unsafe-hashes' admits no other handler text).
_HANDLER = "sha256-" + base64.b64encode(hashlib.sha256(b"return false").digest()).decode()


def policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' '{_HANDLER}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "media-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def nonce_of(request: Request) -> str:
    """This response's CSP nonce, for a template's inline script or style."""
    return str(getattr(request.state, "csp_nonce", ""))


class SecurityHeaders:
    """Adds the security headers to every HTTP response; gives each request its CSP nonce."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        extra = [
            (b"content-security-policy", policy(nonce).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((name, value) for name, value in extra if name not in names),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def _assets() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
window.ui = SwaggerUIBundle({{url: "{openapi}", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"}});
</script></body></html>
"""


def install_docs(app: FastAPI) -> None:
    """`/docs` as Swagger UI from assets served here (the app is made with `docs_url=None`)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(_assets())), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        page = _DOCS_PAGE.format(
            title=escape(f"{app.title} API"),
            assets=DOCS_ASSETS,
            nonce=nonce_of(request),
            openapi=app.openapi_url,
        )
        return HTMLResponse(page)

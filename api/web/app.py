"""The FastAPI application: the web console and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import api.tables  # noqa: F401  (every table registered before any session opens)
from api import __version__
from api.accounts.users import burn_verify
from api.audit.anchors import Anchorer
from api.audit.chain import with_audit_key
from api.console import admin as admin_console
from api.console import agents as agent_console
from api.console import common as console
from api.console import qa as qa_console
from api.console import supervisors as supervisor_console
from api.i18n import LanguageMiddleware, site_default
from api.outcomes.webhooks import COMPONENT as WEBHOOKS
from api.recordings.retrieval import WorkingDay
from api.routes import audit as audit_routes
from api.routes import calls as call_routes
from api.routes import debtors as debtor_routes
from api.routes import outcomes as outcome_routes
from api.routes import qa as qa_routes
from api.routes import recordings as recording_routes
from api.routes import retrieval as retrieval_routes
from api.routes import search as search_routes
from api.settings import Settings
from api.web import problems
from api.web.headers import SecurityHeaders, install_docs
from api.web.health import HealthChecker
from api.web.limits import BodyLimit, InputGuard
from api.web.proxies import ForwardedFor
from api.web.services import Services
from api.wiring import anchor_store, audit_key, key_ring, storage_copies, storage_targets
from dialer.announcements import COMPONENT as ANNOUNCEMENTS
from dialer.numbers import load_or_create_secret
from dialer.workdays import load_calendar
from qa_scoring.worker import COMPONENT as QA
from recording.db.engine import make_engine, session_factory
from recording.uploader import COMPONENT as UPLOADER
from transcribe.worker import COMPONENT as TRANSCRIBER


class ComponentReport(BaseModel):
    ok: bool
    detail: str


class HealthReport(BaseModel):
    status: str
    version: str
    components: dict[str, ComponentReport]


def create_app(
    health: HealthChecker,
    services: Services,
    *,
    docs: bool = True,
    anchorer: Anchorer | None = None,
) -> FastAPI:
    """The app; with `anchorer`, it anchors the audit chain while it runs and at shutdown."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if anchorer is not None:
            await run_in_threadpool(anchorer.start)
        try:
            yield
        finally:
            if anchorer is not None:
                await run_in_threadpool(anchorer.stop)

    app = FastAPI(
        title="Dialguard",
        version=__version__,
        description="Telephony and call-recording server for debt-collection call centers.",
        docs_url=None,  # served from our own assets below, or not at all
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.health = health
    problems.install(app)
    if docs:
        install_docs(app)
    # uploads have their own, larger ceilings (plus room for the multipart framing);
    # everything else is a small body
    app.add_middleware(
        BodyLimit,
        larger={
            "/api/v1/debtors/import": debtor_routes.MAX_UPLOAD_BYTES + 65536,
            "/admin/dnc": admin_console.MAX_DNC_BYTES + 65536,
        },
    )
    app.add_middleware(InputGuard)  # a control character in a query string or path: 422
    app.add_middleware(SecurityHeaders)  # every answer carries the headers
    app.add_middleware(LanguageMiddleware, default=services.language)
    if services.trusted_proxies:  # outermost: every layer sees the client the proxy names
        app.add_middleware(ForwardedFor, trusted=services.trusted_proxies)
    app.include_router(search_routes.router)
    app.include_router(recording_routes.router)
    app.include_router(retrieval_routes.router)
    app.include_router(debtor_routes.router)
    app.include_router(qa_routes.router)
    console.install(app)  # logging in and out, and the login page for a page without a session
    app.include_router(qa_console.router)
    app.include_router(supervisor_console.router)
    app.include_router(agent_console.router)
    app.include_router(admin_console.router)
    app.include_router(call_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(outcome_routes.router)

    @app.get(
        "/healthz",
        response_model=HealthReport,
        responses={503: {"model": HealthReport, "description": "a component is unhealthy"}},
    )
    async def healthz() -> JSONResponse:
        """200 only when every component answers; 503 names the ones that do not."""
        results = await run_in_threadpool(health.check)
        report = HealthReport(
            status="ok" if all(r.ok for r in results) else "unhealthy",
            version=__version__,
            components={r.name: ComponentReport(ok=r.ok, detail=r.detail) for r in results},
        )
        return JSONResponse(report.model_dump(), status_code=200 if report.status == "ok" else 503)

    return app


def build_app(settings: Settings) -> FastAPI:
    """The app as `dialguard up` serves it, wired from settings."""
    engine = make_engine(settings.effective_database_url)
    key = audit_key(settings)
    assert key is not None
    sessions = with_audit_key(session_factory(engine), key)
    copies = storage_copies(settings)
    burn_verify("")  # the dummy hash of unknown names' logins, made before the first login
    checker = HealthChecker(
        engine=engine,
        sessions=sessions,
        storage=storage_targets(settings),
        sip=(settings.sip_host, settings.sip_port),
        workers={
            UPLOADER: 1,
            TRANSCRIBER: settings.transcribe_workers,
            QA: 1,
            WEBHOOKS: 1 if settings.webhook_url else 0,
            ANNOUNCEMENTS: 1 if settings.trunk_uri else 0,  # started only with a trunk
        },
    )
    services = Services(
        sessions=sessions,
        spool=settings.spool_dir,
        copies=copies,
        keys=key_ring(settings),
        working_day=WorkingDay(ZoneInfo(settings.timezone), load_calendar(), settings.workday_end),
        phone_region=settings.phone_region,
        allow_vanity_numbers=settings.allow_vanity_numbers,
        require_totp=settings.require_totp,
        policy_preset=settings.policy_preset,
        language=site_default(settings.language, settings.policy_preset),
        qa_pack=settings.qa_pack,
        # The dialer, the do-not-call lists and the debtor records hash numbers with one key.
        number_secret=load_or_create_secret(settings.number_key_file),
        audit_key=key,
        retention_max_days=settings.retention_max_days,
        client_retention_max=settings.client_retention_max_map,
        trusted_proxies=settings.trusted_proxy_networks,
    )
    anchorer = Anchorer(
        sessions, anchor_store(settings, copies), interval_s=settings.audit_anchor_interval
    )
    return create_app(checker, services, docs=settings.api_docs, anchorer=anchorer)

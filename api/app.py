"""The FastAPI application: the web console and the HTTP API."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import __version__, console, problems, retrieval_routes, routes
from api.health import HealthChecker
from api.retrieval import WorkingDay
from api.services import Services
from api.settings import Settings
from api.wiring import key_ring, storage_copies, storage_targets
from dialer.workdays import load_calendar
from recording.db import make_engine, session_factory
from recording.uploader import COMPONENT as UPLOADER
from transcribe.worker import COMPONENT as TRANSCRIBER


class ComponentReport(BaseModel):
    ok: bool
    detail: str


class HealthReport(BaseModel):
    status: str
    version: str
    components: dict[str, ComponentReport]


def create_app(health: HealthChecker, services: Services) -> FastAPI:
    app = FastAPI(
        title="Dialguard",
        version=__version__,
        description="Telephony and call-recording server for debt-collection call centers.",
    )
    app.state.services = services
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(retrieval_routes.router)
    app.include_router(console.router)

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
    sessions = session_factory(engine)
    checker = HealthChecker(
        engine=engine,
        sessions=sessions,
        storage=storage_targets(settings),
        sip=(settings.sip_host, settings.sip_port),
        workers={UPLOADER: 1, TRANSCRIBER: settings.transcribe_workers},
    )
    services = Services(
        sessions=sessions,
        spool=settings.spool_dir,
        copies=storage_copies(settings),
        keys=key_ring(settings),
        working_day=WorkingDay(ZoneInfo(settings.timezone), load_calendar(), settings.workday_end),
    )
    return create_app(checker, services)

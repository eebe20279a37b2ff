"""The FastAPI application: the web console and the HTTP API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import __version__
from api.health import HealthChecker
from api.settings import Settings
from api.wiring import storage_targets
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


def create_app(health: HealthChecker) -> FastAPI:
    app = FastAPI(title="Dialguard", version=__version__)

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
    checker = HealthChecker(
        engine=engine,
        sessions=session_factory(engine),
        storage=storage_targets(settings),
        sip=(settings.sip_host, settings.sip_port),
        workers={UPLOADER: 1, TRANSCRIBER: settings.transcribe_workers},
    )
    return create_app(checker)

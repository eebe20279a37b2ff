"""/healthz asks each component itself and is 200 only when all of them answer."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.migrate import head_revision
from api.web.app import create_app
from api.web.health import HealthChecker, check_database, check_worker
from api.web.services import Services
from recording.db.engine import make_engine, session_factory
from recording.db.heartbeats import alert_detail, beat
from recording.embedded_s3 import EmbeddedS3
from recording.storage import S3Target
from tests.helpers import free_port

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _checker(engine: Engine, storage: tuple[S3Target, S3Target]) -> HealthChecker:
    return HealthChecker(
        engine=engine,
        sessions=session_factory(engine),
        storage=storage,
        sip=("127.0.0.1", free_port(socket.SOCK_DGRAM)),
        workers={"uploader": 1, "transcriber": 2},
        clock=lambda: NOW,
    )


def test_healthz_names_what_is_down(
    engine: Engine, locked_target: S3Target, seaweed: EmbeddedS3, services: Services
) -> None:
    checker = _checker(engine, (locked_target, seaweed.target("no-such-replica")))
    with session_factory(engine)() as session:
        beat(session, "uploader", "h:1", "0 waiting in spool", NOW, NOW)
        beat(session, "transcriber", "h:2", "model base loaded", NOW, NOW)
    response = TestClient(create_app(checker, services)).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    state = {name: c["ok"] for name, c in body["components"].items()}
    assert state == {
        "database": True,
        "storage": True,
        "storage-replica": False,
        "dialer": False,
        "uploader": True,
        "transcriber": False,  # one of the two configured workers beats
    }
    assert "does not exist" in body["components"]["storage-replica"]["detail"]
    assert "1 of 2" in body["components"]["transcriber"]["detail"]


def test_database_behind_the_code_is_unhealthy(database_url: str) -> None:
    engine = make_engine(database_url)
    result = check_database(engine, head_revision(engine))
    assert not result.ok and "code needs" in result.detail
    engine.dispose()


def test_unreachable_database_is_unhealthy() -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    result = check_database(engine, "0001")
    assert not result.ok and "unreachable" in result.detail


def test_a_worker_alive_but_alarmed_is_unhealthy_and_says_why(engine: Engine) -> None:
    """Storage refusing uploads: the uploader still beats, but the site is not healthy."""
    sessions = session_factory(engine)
    with sessions() as session:
        beat(
            session,
            "uploader",
            "h:1",
            alert_detail("storage refuses writes", "3 waiting"),
            NOW,
            NOW,
        )
    result = check_worker(sessions, "uploader", NOW)
    assert not result.ok
    assert result.detail == "ALERT: storage refuses writes; 3 waiting"
    with sessions() as session:
        beat(session, "uploader", "h:1", "0 waiting in spool", NOW, NOW)
    assert check_worker(sessions, "uploader", NOW).ok

"""Checks of an installation, shared by `dialguard doctor` and `dialguard up`.

Every failure names the problem and its fix on one line: an operator at a
terminal should never need a traceback to know what to do.
"""

from __future__ import annotations

import enum
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from api.errors import ApiError, DatabaseUnavailable
from api.migrate import current_revision, known_revision, pending_revisions
from api.settings import Settings
from api.wiring import storage_targets, with_embedded_storage
from dialer.errors import SipUnreachable
from dialer.sip.probe import port_in_use, sip_ping
from recording.db.engine import make_engine, redact_url, session_factory
from recording.embedded_s3 import find_weed, load_or_create_credentials, running_instance
from recording.errors import BucketMissing, HintedError, RecordingError
from recording.storage import check_bucket, make_client
from transcribe.engine import load_model
from transcribe.errors import TranscribeError
from transcribe.model_store import resolve_model
from transcribe.stats import keep_up


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""

    @property
    def line(self) -> str:
        return f"{self.detail} - {self.hint}" if self.hint else self.detail


def _fail(name: str, exc: HintedError) -> CheckResult:
    return CheckResult(name, Status.FAIL, str(exc), exc.hint)


def check_ffmpeg() -> CheckResult:
    path = shutil.which("ffmpeg")
    if path is None:
        return CheckResult(
            "ffmpeg", Status.FAIL, "ffmpeg is not installed", "apt-get install ffmpeg"
        )
    out = subprocess.run(
        [path, "-version"], capture_output=True, text=True, timeout=10, check=False
    )
    first = out.stdout.splitlines()[0] if out.stdout else "unknown version"
    return CheckResult("ffmpeg", Status.OK, " ".join(first.split()[:3]))


def check_model(settings: Settings, load: bool = True) -> CheckResult:
    try:
        path = resolve_model(settings.whisper_model, settings.models_dir)
        if load:
            model = load_model(path, settings.whisper_device)
            return CheckResult(
                "whisper model",
                Status.OK,
                f"{settings.whisper_model} loads on {model.model.device}",
            )
    except TranscribeError as exc:
        return _fail("whisper model", exc)
    return CheckResult("whisper model", Status.OK, f"{settings.whisper_model} at {path}")


def open_database(settings: Settings) -> Engine:
    """An engine that has answered a query; a DatabaseError naming the fix otherwise."""
    url = settings.effective_database_url
    try:
        shown = redact_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(
            "DIALGUARD_DATABASE_URL is not a database URL",
            hint="use e.g. postgresql+psycopg://user@host:5432/dialguard",
        ) from None
    try:
        engine = make_engine(url)
        with engine.connect():
            pass
    except NoSuchModuleError:
        raise DatabaseUnavailable(
            f"no database driver for {shown}",
            hint="use sqlite:/// or postgresql+psycopg:// URLs",
        ) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:160]
        raise DatabaseUnavailable(
            f"cannot connect to {shown} ({reason})",
            hint="check DIALGUARD_DATABASE_URL and that the database server is running",
        ) from None
    return engine


def check_database(settings: Settings) -> CheckResult:
    url = settings.effective_database_url
    if (
        url.startswith("sqlite")
        and not (settings.data_dir / "dialguard.db").exists()
        and (settings.database_url is None)
    ):
        return CheckResult(
            "database", Status.WARN, "SQLite database not created yet", "dialguard up creates it"
        )
    try:
        engine = open_database(settings)
    except DatabaseUnavailable as exc:
        return _fail("database", exc)
    try:
        current = current_revision(engine)
        if current is not None and not known_revision(engine, current):
            return CheckResult(
                "database",
                Status.FAIL,
                f"schema {current} is newer than this Dialguard",
                "upgrade Dialguard to the version that wrote it",
            )
        pending = pending_revisions(engine)
    finally:
        engine.dispose()
    shown = redact_url(url)
    if pending:
        return CheckResult(
            "database",
            Status.WARN,
            f"{shown}: {len(pending)} migration(s) pending",
            "dialguard up (or dialguard db upgrade) applies them",
        )
    return CheckResult("database", Status.OK, f"{shown}: schema {current}")


def check_transcription(settings: Settings) -> CheckResult:
    """Keep-up ratio and backlog: a site falling behind finds out here, not at audit time."""
    if settings.database_url is None and not (settings.data_dir / "dialguard.db").exists():
        return CheckResult("transcription", Status.OK, "no recordings yet")
    try:
        engine = open_database(settings)
    except DatabaseUnavailable as exc:
        return _fail("transcription", exc)
    try:
        if pending_revisions(engine):
            return CheckResult("transcription", Status.WARN, "database not migrated yet")
        with session_factory(engine)() as session:
            state = keep_up(session, datetime.now(UTC))
    finally:
        engine.dispose()
    behind = state.backlog_jobs > 0 and (state.ratio or 0.0) < 1.0
    if behind or state.dead_jobs:
        return CheckResult(
            "transcription",
            Status.WARN,
            state.describe(),
            "add transcription workers (DIALGUARD_TRANSCRIBE_WORKERS) or a GPU host"
            if behind
            else "see failed jobs: their reason is stored with them",
        )
    return CheckResult("transcription", Status.OK, state.describe())


def check_storage(settings: Settings) -> list[CheckResult]:
    if settings.embedded_s3:
        try:
            weed = find_weed()
        except RecordingError as exc:
            return [_fail("object storage", exc)]
        running = running_instance(settings.s3_dir)
        if running is None:
            return [
                CheckResult(
                    "object storage",
                    Status.OK,
                    f"embedded SeaweedFS ({weed.name}) starts with dialguard up",
                )
            ]
        creds = load_or_create_credentials(settings.s3_dir)
        settings = with_embedded_storage(settings, running[1], creds.access_key, creds.secret_key)
    try:
        targets = storage_targets(settings)
    except ApiError as exc:
        return [_fail("object storage", exc)]
    results = []
    for name, target in zip(("object storage", "replica storage"), targets, strict=True):
        try:
            check_bucket(make_client(target, timeout=3.0, retries=0), target)
        except BucketMissing as exc:
            results.append(CheckResult(name, Status.WARN, str(exc), "dialguard up creates it"))
        except RecordingError as exc:
            results.append(_fail(name, exc))
        else:
            results.append(CheckResult(name, Status.OK, f"{target.label}, object lock on"))
    return results


def check_sip_port(settings: Settings, allow_dialguard: bool) -> CheckResult:
    host, port = settings.sip_host, settings.sip_port
    busy = port_in_use(host, port)
    if not busy:
        return CheckResult("SIP port", Status.OK, f"{host}:{port} udp+tcp free")
    if allow_dialguard:
        try:
            reply = sip_ping(host, port, timeout=1.0)
        except SipUnreachable:
            pass
        else:
            if reply.user_agent.startswith("Dialguard"):
                return CheckResult(
                    "SIP port", Status.OK, f"{host}:{port} held by running Dialguard"
                )
    return CheckResult(
        "SIP port",
        Status.FAIL,
        f"SIP port {host}:{port} ({'+'.join(busy)}) is in use by another process",
        "stop it or set DIALGUARD_SIP_PORT to a free port",
    )


def check_api_port(settings: Settings, allow_dialguard: bool) -> CheckResult:
    host, port = settings.api_host, settings.api_port
    if "tcp" not in port_in_use(host, port):
        return CheckResult("API port", Status.OK, f"{host}:{port} free")
    if allow_dialguard:
        try:
            answer = httpx.get(f"http://{host}:{port}/healthz", timeout=5.0)
            if "components" in answer.json():
                return CheckResult(
                    "API port", Status.OK, f"{host}:{port} held by running Dialguard"
                )
        except (httpx.HTTPError, ValueError):
            pass
    return CheckResult(
        "API port",
        Status.FAIL,
        f"API port {host}:{port} is in use by another process",
        "stop it or set DIALGUARD_API_PORT to a free port",
    )


def run_doctor(settings: Settings) -> list[CheckResult]:
    return [
        check_ffmpeg(),
        check_model(settings),
        check_database(settings),
        check_transcription(settings),
        *check_storage(settings),
        check_sip_port(settings, allow_dialguard=True),
        check_api_port(settings, allow_dialguard=True),
    ]


def render(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    rows = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    rows += [f"{r.name.ljust(width)}  {r.status.value.ljust(6)}  {r.line}" for r in results]
    return "\n".join(rows)

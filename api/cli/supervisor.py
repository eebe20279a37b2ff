"""`dialguard up`: preflight, embedded services, and the supervised processes.

Process tree: this supervisor; the embedded SeaweedFS (unless an S3 endpoint
is configured); and one child each for the API, the dialer, the recording
uploader and N transcription workers. Children leave the terminal's process
group, so Ctrl-C reaches only the supervisor, which stops them in order
(API and dialer first, S3 last). Each child also dies with its parent
(PR_SET_PDEATHSIG, and a watchdog thread that exits a child its supervisor
left), and SeaweedFS gets SIGKILL when the supervisor's main thread ends,
so a `kill -9` of the supervisor leaves nothing behind.

Everything is supervised the same way: a child, or SeaweedFS, that exits
or stops answering is restarted with backoff and a log line that counts the
restarts. "Stops answering" is a heartbeat older than `HANG_AFTER_S` for a
worker that beats (uploader, transcribers, QA, webhooks, announcements),
its own protocol unanswered for as long for a child that answers requests
(the API over HTTP, the Kamailio edge or the refusing dialer with OPTIONS), once
it has answered since its start, and an S3 request unanswered for as long
for SeaweedFS (frozen, wedged).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from api.cli.doctor import (
    CheckResult,
    Status,
    check_api_port,
    check_ffmpeg,
    check_model,
    check_sip_port,
    hinted,
    open_database,
)
from api.cli.worker_context import drop_forkserver_pipe, worker_context
from api.errors import ApiError
from api.i18n import N_, gettext, translate
from api.logs import configure_logging
from api.migrate import upgrade
from api.restarts import record_restart, restarts_file
from api.settings import ROLES, Settings
from api.wiring import (
    dialer_config,
    dialer_pool,
    key_ring,
    storage_copies,
    storage_targets,
    with_embedded_storage,
)
from dialer.pool import WORKERS_PER_CORE, PoolSize
from recording.db.engine import as_utc, make_engine, session_factory
from recording.db.heartbeats import Heartbeat
from recording.embedded_s3 import EmbeddedS3
from recording.errors import EmbeddedStorageError, HintedError
from recording.storage import ensure_bucket, make_client

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_MAX_BACKOFF = 30.0
#: A worker whose heartbeat, or an embedded S3 whose answer, is this old is restarted.
HANG_AFTER_S = 10.0
_ANSWER_TIMEOUT_S = 2.0  # one probe of a child that answers requests
#: How often heartbeats and the embedded S3 are looked at.
_PROBE_EVERY_S = 2.0
#: A restarted SeaweedFS gets this long to answer before it counts as hung, doubled
#: for each restart in a row (a large store loads its volumes slowly; a wedged
#: start is retried soon), up to `_S3_MAX_START_GRACE_S`.
_S3_START_GRACE_S = 30.0
_S3_MAX_START_GRACE_S = 240.0
#: A child whose supervisor is gone gets this long to stop on its own SIGTERM.
_ORPHAN_GRACE_S = 10.0


class PreflightFailed(Exception):
    """`up` cannot start; the message is the one line to show the operator."""


# --- children ------------------------------------------------------------------------


def _child_setup(name: str, settings: Settings) -> threading.Event:
    drop_forkserver_pipe()  # a forked dialer worker must not keep its server alive
    os.setpgid(0, 0)  # out of the terminal's group: the supervisor decides when we stop
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    supervisor = parent.pid if parent is not None and parent.pid else os.getppid()
    if os.getppid() != supervisor and _parent_of(os.getppid()) == supervisor:
        # a dialer worker forked by the forkserver (api.cli.worker_context), which exits with
        # the supervisor: watching it is watching the supervisor
        supervisor = os.getppid()
    if os.getppid() != supervisor:
        os._exit(1)  # the supervisor died before the prctl: nobody would signal us
    configure_logging(settings.log_level, name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_orphaned, args=(supervisor, stop), name="orphan-watch", daemon=True
    ).start()
    return stop


def _parent_of(pid: int) -> int | None:
    """The parent of process `pid` (/proc), None when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _exit_when_orphaned(supervisor: int, stop: threading.Event) -> None:
    """Stop when the supervisor is gone, and exit for sure if stopping hangs.

    PR_SET_PDEATHSIG delivers SIGTERM, which only asks: a child stuck in a
    call (a database that does not answer, say) would outlive its supervisor.
    """
    while os.getppid() == supervisor:
        time.sleep(1.0)
    stop.set()
    time.sleep(_ORPHAN_GRACE_S)
    os._exit(1)


def run_api_child(plan: DialerPlan, settings: Settings) -> None:
    import uvicorn

    from api.web.app import build_app

    stop = _child_setup("api", settings)
    app = build_app(settings)
    app.state.dialer_status = plan.status_lines()  # the console's Status page shows them
    app.state.edge_rpc_port = plan.edge_rpc_port if plan.edge else None
    app.state.restarts_path = restarts_file(settings.data_dir)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app does it
            # itself, from DIALGUARD_TRUSTED_PROXIES only (`api.web.proxies`)
            proxy_headers=False,
        )
    )

    def _exit_when_stopped() -> None:
        # uvicorn installs its own SIGTERM handler while serving; ours covers the start.
        stop.wait()
        server.should_exit = True

    threading.Thread(target=_exit_when_stopped, daemon=True).start()
    _follow_pause_events(settings, stop)
    server.run()


def _follow_pause_events(settings: Settings, stop: threading.Event) -> None:
    """Recording pauses the dialer wrote go into the audit log (a thread of the API child)."""
    from api.audit.pauses import follow_pause_events
    from api.wiring import audit_sessions

    sessions = audit_sessions(settings)  # pauses are audit entries: they carry the MAC
    threading.Thread(
        target=follow_pause_events,
        args=(sessions, lambda: datetime.now(UTC), stop),
        name="pause-audit",
        daemon=True,
    ).start()


def run_dialer_child(settings: Settings) -> None:
    """Without a trunk: one endpoint that answers OPTIONS and refuses every INVITE."""
    from api import __version__
    from dialer.sip.endpoint import run_dialer

    stop = _child_setup("dialer", settings)
    run_dialer(settings.sip_host, settings.sip_port, stop, __version__)


def run_edge_child(workers: int, rpc_port: int, settings: Settings) -> None:
    """Kamailio, the SIP edge, in front of the dialer hosts' workers (`workers` on each;
    0: DIALGUARD_DIALER_WORKERS, for an edge host without workers of its own).

    A child like the others (restarted when it exits, or when OPTIONS to the
    SIP port goes unanswered for `HANG_AFTER_S`): it writes the config, runs
    Kamailio, and exits when Kamailio does. Kamailio dies with it.
    """
    from api.wiring import edge_config, edge_workers_list, edge_workers_per_host
    from dialer.edge.process import EdgeError, EdgeProcess, write_config

    stop = _child_setup("sip-edge", settings)
    assert settings.edge_secret is not None  # run_up makes one per run when unset
    config = edge_config(settings, rpc_port)
    path = write_config(
        config,
        settings.edge_secret.get_secret_value(),
        settings.effective_database_url,
        # every dialer host's workers (DIALGUARD_DIALER_HOSTS), as `dialguard edge config`
        edge_workers_list(settings, workers or edge_workers_per_host(settings)),
    )
    edge = EdgeProcess(config, path)
    try:
        edge.launch()
        while not stop.wait(0.5):
            if not edge.alive():
                log.error(
                    "kamailio exited",
                    extra={"exitcode": edge.exitcode, "reason": edge.tail_log(2)},
                )
                sys.exit(1)
    except EdgeError as exc:
        log.error("kamailio did not start: %s", exc)
        sys.exit(1)
    finally:
        edge.stop()


def run_worker_child(
    index: int,
    ports: MutableSequence[int],
    legs: MutableSequence[int],
    carrier_port: int | None,
    settings: Settings,
) -> None:
    from api import __version__
    from api.wiring import dialer_config, dialer_site
    from dialer.process import run_worker

    stop = _child_setup(f"dialer-{index}", settings)
    config = dialer_config(settings, __version__, carrier_port)  # edge trust from the settings
    run_worker(
        config,
        dialer_site(settings),
        stop,
        index,
        ports,
        legs,
        port_base=settings.dialer_port_base,
    )


def run_carrier_child(port: int, line: Path, settings: Settings) -> None:
    """The built-in test carrier the workers dial when no trunk is configured."""
    from api import __version__
    from dialer.sip.builtin_carrier import run_builtin_carrier

    stop = _child_setup("test-carrier", settings)
    run_builtin_carrier(port, line, stop, __version__)


def run_qa_child(settings: Settings) -> None:
    from qa_scoring.pack_store import active_pack_source
    from qa_scoring.worker import run_qa_child_loop
    from recording.db.engine import make_engine, session_factory

    stop = _child_setup("qa", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    # The pack an admin chose in the console, else DIALGUARD_QA_PACK; read before each batch.
    run_qa_child_loop(sessions, active_pack_source(sessions, settings.qa_pack), stop)


@dataclass(frozen=True)
class DialerPlan:
    """The SIP side of this start: the pool, and the test carrier when it stands in for a trunk.

    `pool` None: no trunk and no test carrier, so one endpoint refuses every call.
    """

    pool: PoolSize | None
    trunk: str | None = None  # DIALGUARD_TRUNK_URI
    carrier_port: int | None = None  # the built-in test carrier's, when it runs
    carrier_line: Path | None = None
    edge_rpc_port: int = 0  # the Kamailio edge's JSON-RPC on 127.0.0.1 (its bans)
    #: The dialer hosts, when this host runs none of the workers (DIALGUARD_ROLE).
    elsewhere: tuple[str, ...] = ()
    role: str = "all"  # DIALGUARD_ROLE
    edge: bool = True  # Kamailio runs on this host

    def status_lines(self) -> list[StatusLine]:
        """Rows for the console's Status page, said in the reader's language when shown."""
        if self.elsewhere:
            return [
                StatusLine(
                    N_("Dialer pool"),
                    N_("on the dialer hosts %(hosts)s (this host: DIALGUARD_ROLE=%(role)s)"),
                    {"hosts": ", ".join(self.elsewhere), "role": self.role},
                )
            ]
        if self.pool is None:
            return [
                StatusLine(
                    N_("Carrier"),
                    N_(
                        "none: DIALGUARD_TRUNK_URI is not set and the test carrier is off, "
                        "so every call is refused"
                    ),
                )
            ]
        if self.carrier_port is not None:
            carrier = StatusLine(
                N_("Carrier"),
                N_(
                    "TEST CARRIER on 127.0.0.1:%(port)s: every call is answered by "
                    "Dialguard's built-in test carrier with a short spoken line (%(line)s), "
                    "not by a phone network. Set DIALGUARD_TRUNK_URI for real calls; "
                    "DIALGUARD_TEST_CARRIER=off in production."
                ),
                {
                    "port": str(self.carrier_port),
                    "line": self.carrier_line.name if self.carrier_line else "",
                },
                alarm=True,
            )
        else:
            carrier = StatusLine(N_("Carrier"), N_("trunk %(trunk)s"), {"trunk": str(self.trunk)})
        return [
            _pool_line(self.pool),
            carrier,
            StatusLine(
                N_("SIP edge"),
                N_("Kamailio: checks logins, bans attackers, dispatches to every worker"),
            ),
        ]


@dataclass(frozen=True)
class StatusLine:
    """A row of the Status page: message ids and their parameters, not yet translated
    (the API process says them in each reader's language)."""

    what: str
    how: str
    params: dict[str, str] = field(default_factory=dict)
    alarm: bool = False  # shown as an error: the test carrier answers the calls


def _pool_line(pool: PoolSize) -> StatusLine:
    """`PoolSize.describe` for the console, one message per case so each can be translated."""
    params = {
        "workers": str(pool.workers),
        "calls": str(pool.calls),
        "cores": str(pool.cores),
        "sized": str(pool.sized),
        "per_core": str(WORKERS_PER_CORE),
        "gib": f"{pool.available_mib / 1024:.1f}" if pool.available_mib is not None else "",
        "room": str(pool.by_memory) if pool.by_memory is not None else "",
    }
    known = pool.available_mib is not None and pool.by_memory is not None
    if pool.requested:
        how = (
            N_(
                "%(workers)s workers = %(calls)s calls: set by DIALGUARD_DIALER_WORKERS "
                "(this host: %(cores)s cores, %(gib)s GiB available; auto would start %(sized)s)"
            )
            if known
            else N_(
                "%(workers)s workers = %(calls)s calls: set by DIALGUARD_DIALER_WORKERS "
                "(this host: %(cores)s cores, memory unknown; auto would start %(sized)s)"
            )
        )
    else:
        how = (
            N_(
                "%(workers)s workers = %(calls)s calls: %(cores)s cores (%(per_core)s workers "
                "a core), %(gib)s GiB available (room for %(room)s)"
            )
            if known
            else N_(
                "%(workers)s workers = %(calls)s calls: %(cores)s cores (%(per_core)s workers "
                "a core), memory unknown"
            )
        )
    return StatusLine(N_("Dialer pool"), how, params)


def _free_loopback_port(attempts: int = 20) -> int:
    """A port on 127.0.0.1 free for both UDP and TCP (pjsua2 binds both)."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise OSError("no port on 127.0.0.1 is free for both UDP and TCP")


def plan_dialer(settings: Settings) -> DialerPlan:
    """Size the pool, and with the test carrier make its line and pick its port."""
    rpc = settings.edge_rpc_port or _free_loopback_port()
    edge, role = "edge" in settings.roles, settings.role
    if "dialer" not in settings.roles:  # the workers are on the dialer hosts
        return DialerPlan(
            None, edge_rpc_port=rpc, elsewhere=settings.dialer_host_list, edge=edge, role=role
        )
    if settings.trunk_uri is not None:
        return DialerPlan(
            dialer_pool(settings), trunk=settings.trunk_uri, edge_rpc_port=rpc, edge=edge, role=role
        )
    if not settings.test_carrier_on:
        return DialerPlan(None, edge=False, role=role)
    from dialer.carrier_line import ensure_lines

    lines = ensure_lines(settings.test_carrier_dir)
    return DialerPlan(
        dialer_pool(settings),
        carrier_port=_free_loopback_port(),
        carrier_line=lines[settings.test_line_language],
        edge_rpc_port=rpc,
        edge=edge,
        role=role,
    )


def dialer_children(settings: Settings, ctx: BaseContext, plan: DialerPlan) -> list[Child]:
    """The SIP side: a refusing endpoint without a carrier, else the workers and the Kamailio
    edge in front of them (with the test carrier behind them when it stands in for the trunk).
    A host runs the workers with the `dialer` role, Kamailio with `edge` (DIALGUARD_ROLE).

    Workers first, then the edge: its dispatcher probes find them answering.
    """
    roles = settings.roles
    edge = Child(
        "sip-edge",
        functools.partial(
            run_edge_child,
            plan.pool.workers if plan.pool is not None and "dialer" in roles else 0,
            plan.edge_rpc_port,
        ),
        probe=sip_answers,
    )
    if "dialer" not in roles:
        return [edge] if "edge" in roles else []
    if plan.pool is None:  # no carrier: one endpoint refuses every call (one host only)
        return [Child("dialer", run_dialer_child, probe=sip_answers)]
    n = plan.pool.workers
    ports = ctx.Array("i", n, lock=False)
    legs = ctx.Array("i", n, lock=False)
    carrier: list[Child] = []
    if plan.carrier_port is not None and plan.carrier_line is not None:
        carrier = [
            Child(
                "test-carrier",
                functools.partial(run_carrier_child, plan.carrier_port, plan.carrier_line),
            )
        ]
    return [
        *carrier,
        *[
            Child(
                f"dialer-{i}",
                functools.partial(run_worker_child, i, ports, legs, plan.carrier_port),
                forked=True,
            )
            for i in range(n)
        ],
        *([edge] if "edge" in roles else []),
    ]


def role_children(settings: Settings, plan: DialerPlan) -> list[Child]:
    """The children this host's roles (DIALGUARD_ROLE) call for.

    The recording uploader and the announcements go with the workers: they
    read the spool the workers write on this host's disk. Transcription and
    QA read only the database and S3, the console and webhooks likewise, so
    they may run anywhere.
    """
    roles = settings.roles
    dialer = "dialer" in roles
    return [
        *dialer_children(settings, multiprocessing.get_context("spawn"), plan),
        *([Child("uploader", run_uploader_child)] if dialer else []),
        *[
            Child(f"transcriber-{i}", run_transcriber_child)
            for i in range(settings.transcribe_workers if "transcribe" in roles else 0)
        ],
        *(
            [Child("announcements", run_announcements_child)]
            if dialer and settings.trunk_uri
            else []
        ),
        *([Child("qa", run_qa_child)] if "transcribe" in roles else []),
        *(
            [Child("webhooks", run_webhooks_child)]
            if "console" in roles and settings.webhook_url
            else []
        ),
        *(
            [Child("api", functools.partial(run_api_child, plan), probe=api_answers)]
            if "console" in roles
            else []
        ),
    ]


def with_edge_secret(settings: Settings) -> Settings:
    """The settings with an edge secret: the site's, or a fresh one for this run.

    One host runs edge and workers together, so a per-run secret suffices
    (marks do not outlive the run); edge hosts and dialer hosts apart share
    DIALGUARD_EDGE_SECRET.
    """
    if settings.edge_secret is not None:
        return settings
    return settings.model_copy(update={"edge_secret": SecretStr(secrets.token_hex(32))})


def run_webhooks_child(settings: Settings) -> None:
    from api.outcomes.webhooks import Receiver, run_webhooks
    from recording.db.engine import make_engine, session_factory

    stop = _child_setup("webhooks", settings)
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    sessions = session_factory(make_engine(settings.effective_database_url))
    receiver = Receiver(settings.webhook_url, settings.webhook_secret.get_secret_value().encode())
    run_webhooks(sessions, receiver, stop)


def run_announcements_child(settings: Settings) -> None:
    """Carrier announcements of failed calls: one transcribe engine, the loop in dialer/."""
    from dialer.announcements import (
        Recogniser,
        announcements_dir,
        load_phrase_book,
        run_announcements,
    )
    from recording.db.engine import make_engine, session_factory
    from transcribe.engine import load_engine
    from transcribe.model_store import resolve_model

    stop = _child_setup("announcements", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    model_dir = resolve_model(settings.whisper_model, settings.models_dir)
    recogniser = Recogniser(
        sessions,
        # 30 s: one window. One thread: a few short clips an hour, which must not take
        # the cores the transcription workers share out (DIALGUARD_WHISPER_THREADS).
        load_engine(model_dir, settings.whisper_device, batch_size=0, cpu_threads=1),
        settings.whisper_model,
        announcements_dir(settings.spool_dir),
        phrases=load_phrase_book(settings.announcement_phrases),
        language=settings.announcement_language or None,
    )
    run_announcements(recogniser, stop)


def run_uploader_child(settings: Settings) -> None:
    from api.audit.chain import audit_to
    from api.recordings.erasure import forget_derived, retention_jobs
    from api.wiring import audit_sessions
    from recording.uploader import run_uploader

    stop = _child_setup("uploader", settings)
    sessions = audit_sessions(settings)  # the end of retention is audited: entries carry the MAC
    audit = audit_to(sessions, lambda: datetime.now(UTC))
    run_uploader(
        sessions,
        settings.spool_dir,
        storage_copies(settings),
        audit,
        stop,
        # a recording's transcript and QA results go with it; ended contracts' data after it
        forget=forget_derived,
        hourly=retention_jobs(sessions),
    )


def run_transcriber_child(settings: Settings) -> None:
    from recording.db.engine import make_engine, session_factory
    from recording.store import fetch
    from transcribe.engine import threads_per_worker
    from transcribe.model_store import resolve_model
    from transcribe.worker import run_transcriber

    stop = _child_setup("transcriber", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    copies, keys = storage_copies(settings), key_ring(settings)
    model_dir = resolve_model(settings.whisper_model, settings.models_dir)

    def fetch_audio(recording_id: str, sink: BinaryIO) -> str:
        return fetch(sessions, settings.spool_dir, copies, keys, recording_id, sink)

    run_transcriber(
        sessions,
        model_dir,
        settings.whisper_model,
        settings.whisper_device,
        fetch_audio,
        stop,
        languages=settings.client_language_map,
        batch_size=settings.whisper_batch,
        beam_size=settings.whisper_beam,
        cpu_threads=threads_per_worker(
            settings.whisper_threads, settings.transcribe_workers, os.cpu_count() or 1
        ),
    )


# --- supervision ---------------------------------------------------------------------


@dataclass
class Child:
    name: str
    target: Callable[[Settings], None]
    process: BaseProcess | None = None
    restarts: int = 0  # in a row, for the backoff; reset once the child runs a minute
    restarted: int = 0  # since `dialguard up` began: the count the logs show
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    #: Asks the child itself whether it answers, for a child that writes no heartbeat: a
    #: beating thread proves nothing about the loop that serves requests.
    probe: Callable[[Settings], bool] | None = None
    forked: bool = False  # a dialer worker: forked from the preloaded forkserver, not spawned
    answered: bool = False  # since its last start: a slow start is never taken for a hang
    failing_since: float | None = None
    hung: bool = False  # killed for not answering: its restart is recorded as a hang


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - a wildcard bind


def api_answers(settings: Settings) -> bool:
    """Any HTTP answer counts: the question is whether the server loop serves at all.

    Not `/healthz`, which asks the database, storage and the dialer and may take
    its time on a loaded host; a path nothing serves is answered 404 at once.
    """
    url = f"http://{_local(settings.api_host)}:{settings.api_port}/.well-known/dialguard-alive"
    try:
        httpx.get(url, timeout=_ANSWER_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return True


def sip_answers(settings: Settings) -> bool:
    """Any final reply to OPTIONS counts."""
    return _answers(settings.sip_host, settings.sip_port)


def _backoff(streak: int) -> float:
    return min(_MAX_BACKOFF, 2.0**streak)


class Supervisor:
    """Starts children and restarts any that die or hang, with backoff, until stopped.

    A hang is seen through the heartbeats workers write to the database
    anyway (`recording.db.heartbeats`): a child that has beaten once and then
    not for `HANG_AFTER_S` is killed, and restarted like one that died. A
    child that never beats (the API, the SIP edge) is asked instead (`Child.probe`),
    and killed when it has not answered for `HANG_AFTER_S` after answering once.
    When every beating child is silent at once, the database is what hangs
    (a long write holding SQLite's lock, say): nobody is killed for it.
    """

    def __init__(
        self,
        settings: Settings,
        children: list[Child],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.children = children
        self.monotonic = monotonic
        self._ctx = multiprocessing.get_context("spawn")
        self._sessions = session_factory(make_engine(settings.effective_database_url))
        self._next_beat_check = 0.0
        self._next_answer_check = 0.0
        self._beats_failing = False

    def _start(self, child: Child) -> None:
        ctx = worker_context() if child.forked else self._ctx
        child.process = ctx.Process(
            target=child.target, args=(self.settings,), name=child.name, daemon=False
        )
        child.process.start()
        child.started_at = self.monotonic()
        child.answered = False
        child.failing_since = None
        log.info("started", extra={"child": child.name, "pid": child.process.pid})

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def tend(self) -> None:
        """Restart dead children; a child that ran a while gets its backoff reset."""
        self._kill_hung()
        self._kill_unanswering()
        now = self.monotonic()
        for child in self.children:
            process = child.process
            if process is None or process.is_alive():
                continue
            if child.next_start == 0.0:
                if now - child.started_at > 60:
                    child.restarts = 0
                delay = _backoff(child.restarts)
                child.restarts += 1
                child.restarted += 1
                child.next_start = now + delay
                log.error(
                    "child exited; restarting",
                    extra={
                        "child": child.name,
                        "exitcode": process.exitcode,
                        "in_s": delay,
                        "restarts": child.restarted,
                    },
                )
                why, child.hung = ("hung" if child.hung else "exited"), False
                record_restart(
                    restarts_file(self.settings.data_dir), child.name, why, datetime.now(UTC)
                )
            elif now >= child.next_start:
                child.next_start = 0.0
                self._start(child)

    def _kill_hung(self) -> None:
        """Kill each child whose heartbeat stopped (frozen, deadlocked): `tend` restarts it."""
        now = self.monotonic()
        if now < self._next_beat_check:
            return
        self._next_beat_check = now + _PROBE_EVERY_S
        host = socket.gethostname()
        running = {
            f"{host}:{child.process.pid}": child
            for child in self.children
            if child.process is not None and child.process.is_alive()
        }
        try:
            with self._sessions() as session:
                beats = session.execute(
                    select(Heartbeat.instance, Heartbeat.beat_at).where(
                        Heartbeat.instance.in_(running)
                    )
                ).all()
        except Exception as exc:  # the database is away: exits are still seen
            if not self._beats_failing:
                log.warning(
                    "cannot read heartbeats; hung children are not detected meanwhile",
                    extra={"reason": type(exc).__name__},
                )
            self._beats_failing = True
            return
        self._beats_failing = False
        wall = datetime.now(UTC)
        silence = {name: (wall - as_utc(beat_at)).total_seconds() for name, beat_at in beats}
        if len(silence) > 1 and min(silence.values()) >= HANG_AFTER_S:
            return  # nobody could write a beat: the database is locked or slow, not the children
        for instance, silent in silence.items():
            child = running[instance]
            if silent >= HANG_AFTER_S and child.process is not None:
                log.error(
                    "child stopped answering (no heartbeat for %.0f s); killing it to restart",
                    silent,
                    extra={"child": child.name, "restarts": child.restarted + 1},
                )
                child.hung = True
                child.process.kill()
                child.process.join(5)

    def _kill_unanswering(self) -> None:
        """Kill each probed child that answered once and then not for `HANG_AFTER_S`."""
        now = self.monotonic()
        if now < self._next_answer_check:
            return
        self._next_answer_check = now + _PROBE_EVERY_S
        for child in self.children:
            process = child.process
            if child.probe is None or process is None or not process.is_alive():
                continue
            if child.probe(self.settings):
                child.answered = True
                child.failing_since = None
                continue
            if not child.answered:
                continue  # still starting (a loaded host takes its time to import)
            now = self.monotonic()
            if child.failing_since is None:
                child.failing_since = now
            elif now - child.failing_since >= HANG_AFTER_S:
                log.error(
                    "child stopped answering (no answer for %.0f s); killing it to restart",
                    now - child.failing_since,
                    extra={"child": child.name, "restarts": child.restarted + 1},
                )
                child.failing_since = None
                child.hung = True
                process.kill()
                process.join(5)

    def restart_all(self, settings: Settings) -> None:
        """Every child again with new settings (the embedded S3 had to move to other ports)."""
        self.stop_all()
        self.settings = settings
        for child in self.children:
            child.restarted += 1
            child.next_start = 0.0
        self.start_all()

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in self.children:
            if child.process is not None and child.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            child.process.join(max(0.1, deadline - time.monotonic()))
            if child.process.is_alive():
                log.warning("child did not stop; killing", extra={"child": child.name})
                child.process.kill()
                child.process.join(5)


class S3Keeper:
    """The embedded SeaweedFS, supervised like a child: restarted when it exits or hangs.

    Probed every `_PROBE_EVERY_S` with an S3 request (list buckets, 2 s
    timeout); unanswered for `HANG_AFTER_S` (after a restart, for
    `_S3_START_GRACE_S`, doubled for each restart in a row) it is killed with
    SIGKILL, which also ends a frozen one. Restarts come with the children's
    backoff and are counted in the logs, with why the last probe failed. Runs
    on the supervisor's main thread: SeaweedFS dies when the thread that
    started it ends (`recording.embedded_s3._die_with_parent`).
    """

    def __init__(
        self,
        s3: EmbeddedS3,
        monotonic: Callable[[], float] = time.monotonic,
        probe_timeout: float = 2.0,
    ) -> None:
        self.s3 = s3
        self.monotonic = monotonic
        self.probe_timeout = probe_timeout
        now = monotonic()
        self.restarted = 0
        self._streak = 0
        self._started_at = now
        self._answered_at = now
        self._starting = False
        self._next_probe = 0.0
        self._next_start = 0.0

    def tend(self) -> bool:
        """One look; True when SeaweedFS came back on other ports (children need new settings)."""
        now = self.monotonic()
        if self._next_start:
            return now >= self._next_start and self._launch(now)
        if not self.s3.alive():
            self._schedule(now, "embedded S3 exited; restarting", exitcode=self.s3.exitcode)
            return False
        if now < self._next_probe:
            return False
        self._next_probe = now + _PROBE_EVERY_S
        if self.s3.answers(self.probe_timeout):
            if self._starting:
                log.warning("embedded S3 answers again", extra={"restarts": self.restarted})
            self._starting = False
            self._answered_at = self.monotonic()
            return False
        silent = self.monotonic() - self._answered_at
        if silent >= (self._start_grace() if self._starting else HANG_AFTER_S):
            self.s3.kill()
            self._schedule(
                self.monotonic(),
                f"embedded S3 has not answered for {silent:.0f} s; killed it to restart",
                reason=self.s3.last_probe_error,
            )
        return False

    def _start_grace(self) -> float:
        return min(_S3_MAX_START_GRACE_S, _S3_START_GRACE_S * 2.0 ** max(0, self._streak - 1))

    def _schedule(
        self, now: float, message: str, exitcode: int | None = None, reason: str | None = None
    ) -> None:
        if now - self._started_at > 60:
            self._streak = 0
        delay = _backoff(self._streak)
        self._streak += 1
        self.restarted += 1
        self._next_start = now + delay
        log.error(
            message,
            extra={
                "child": "embedded-s3",
                "exitcode": exitcode,
                "reason": reason,
                "in_s": delay,
                "restarts": self.restarted,
            },
        )

    def _launch(self, now: float) -> bool:
        self._next_start = 0.0
        endpoint = self.s3.endpoint
        try:
            self.s3.launch()
        except EmbeddedStorageError as exc:
            self._started_at = now
            self._schedule(now, f"embedded S3 did not start: {exc}")
            return False
        self._started_at = self._answered_at = now
        self._starting = True
        log.info("embedded S3 restarted", extra={"pid": self.s3.pid, "restarts": self.restarted})
        return self.s3.endpoint != endpoint


def _require(result: CheckResult) -> None:
    if result.status is Status.FAIL:
        raise PreflightFailed(result.line)


def layout_problem(settings: Settings) -> str | None:
    """Why this host cannot take its part of a layout over several hosts (DIALGUARD_ROLE),
    or None. Pure: a host that runs every part has nothing to agree with."""
    roles = settings.roles
    if roles == frozenset(ROLES):
        return None
    if not settings.effective_database_url.startswith(("postgresql", "postgres")):
        return (
            f"DIALGUARD_ROLE={settings.role}: the hosts share one database; set "
            "DIALGUARD_DATABASE_URL to the site's PostgreSQL"
        )
    if roles & {"dialer", "transcribe", "console"} and settings.embedded_s3:
        return (
            f"DIALGUARD_ROLE={settings.role}: the hosts share one S3 with object lock; set "
            "DIALGUARD_S3_ENDPOINT (and its keys)"
        )
    if ("edge" in roles) != ("dialer" in roles) and settings.edge_secret is None:
        return (
            "DIALGUARD_EDGE_SECRET is not set: the edge and the dialer hosts must share it "
            "(e.g. from: openssl rand -hex 32)"
        )
    if "dialer" in roles and "edge" not in roles:
        if not settings.edge_addresses.strip():
            return (
                "DIALGUARD_EDGE_ADDRESSES is not set: a dialer host takes calls only from "
                "the edge hosts' addresses"
            )
        if settings.trunk_uri is None and not settings.test_carrier_on:
            return "a dialer host without a carrier refuses every call: set DIALGUARD_TRUNK_URI"
    return None


def preflight(settings: Settings) -> None:
    """What must hold before anything starts: each failure is one line for the operator.

    Only what this host's parts (DIALGUARD_ROLE) need: a dialer host has no
    console port to check and no model to load unless it recognises
    carrier announcements.
    """
    roles = settings.roles
    private_data_dir(settings.data_dir)
    problem = layout_problem(settings)
    if problem is not None:
        raise PreflightFailed(problem)
    checks: list[Callable[[], CheckResult]] = []
    if roles & {"dialer", "transcribe"}:
        checks.append(check_ffmpeg)
    if "edge" in roles:  # Kamailio, or the endpoint refusing calls where no carrier is
        checks.append(lambda: check_sip_port(settings, allow_dialguard=False))
    if "console" in roles:
        checks.append(lambda: check_api_port(settings, allow_dialguard=False))
    if "transcribe" in roles or ("dialer" in roles and settings.trunk_uri is not None):
        checks.append(lambda: check_model(settings, load=True))
    for check in checks:
        _require(check())
    try:
        engine = open_database(settings)
        upgrade(engine)
        engine.dispose()
        log.info("database schema up to date")
        if "edge" in roles and "dialer" not in roles:
            from api.wiring import edge_workers_per_host

            edge_workers_per_host(settings)  # an edge alone must be told the workers' count
        if settings.trunk_uri is not None and "dialer" in roles:
            dialer_config(settings, "")
            from dialer.announcements import load_phrase_book

            load_phrase_book(settings.announcement_phrases)  # a bad file: one line, no start
        if "transcribe" in roles:
            from qa_scoring import QaError, load_pack

            try:
                load_pack(settings.qa_pack)
            except QaError as exc:
                raise PreflightFailed(f"DIALGUARD_QA_PACK: {exc}") from None
    except ApiError as exc:
        raise PreflightFailed(hinted(exc)) from None


def prepare_storage(settings: Settings) -> None:
    for target in storage_targets(settings):
        ensure_bucket(
            make_client(target, timeout=10.0),
            target,
            settings.retention_days,
            settings.retention_classes,
        )


def prepare_edge(settings: Settings) -> str:
    """Kamailio is installed and the TLS certificate is there (made if need be): its
    SHA-256 fingerprint, which `up` prints for agents to compare with their softphone's."""
    from api.wiring import edge_tls_files
    from dialer.edge.process import EdgeError, find_kamailio
    from dialer.edge.tls import fingerprint

    try:
        find_kamailio()
        cert, _ = edge_tls_files(settings)
        return fingerprint(cert)
    except EdgeError as exc:
        raise PreflightFailed(str(exc)) from None
    except ApiError as exc:
        raise PreflightFailed(hinted(exc)) from None
    except (OSError, ValueError) as exc:
        raise PreflightFailed(f"DIALGUARD_SIP_TLS_CERT: {exc}") from None


def _wait_healthy(
    settings: Settings,
    stop: threading.Event,
    plan: DialerPlan,
    fingerprint: str | None = None,
    timeout: float = 120.0,
) -> None:
    if "console" not in settings.roles:
        _wait_answering(settings, stop, plan, fingerprint, timeout)
        return
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=10.0).status_code == 200:
                log.info("all components healthy", extra={"console": url.removesuffix("/healthz")})
                print(
                    translate(
                        "Dialguard is up: API %(api)s SIP %(sip)s (udp, tcp). Ctrl-C stops it.",
                        api=f"http://{settings.api_host}:{settings.api_port}/docs",
                        sip=f"{settings.sip_host}:{settings.sip_port}",
                    ),
                    flush=True,
                )
                _say_tls(settings, fingerprint)
                if plan.carrier_port is not None:
                    print(
                        gettext(
                            "No trunk set: calls go to the built-in TEST CARRIER, which answers "
                            "any number with a short spoken line (README: First call in five "
                            "minutes)."
                        ),
                        flush=True,
                    )
                return
        stop.wait(1.0)


def _say_tls(settings: Settings, fingerprint: str | None) -> None:
    """The TLS port and the certificate's fingerprint, for softphones to pin (self-signed)."""
    if fingerprint is not None:
        print(
            translate(
                "SIP over TLS on %(tls)s; certificate SHA-256 fingerprint %(fp)s",
                tls=f"{settings.sip_host}:{settings.sip_tls_port}",
                fp=fingerprint,
            ),
            flush=True,
        )


def _wait_answering(
    settings: Settings,
    stop: threading.Event,
    plan: DialerPlan,
    fingerprint: str | None,
    timeout: float,
) -> None:
    """A host without the console: up once its edge and each of its workers answer OPTIONS
    (the console's /healthz, on another host, covers the site as a whole)."""
    from dialer.edge.dispatch import worker_port

    base = settings.dialer_port_base
    workers = plan.pool.workers if plan.pool is not None and not plan.elsewhere else 0
    targets = [(settings.sip_host, settings.sip_port)] if plan.edge else []
    targets += [(settings.sip_host, worker_port(base, i)) for i in range(workers)]
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        if all(_answers(host, port) for host, port in targets):
            where = [f"{settings.sip_host}:{settings.sip_port}"] if plan.edge else []
            if workers:
                where.append(f"{settings.sip_host}:{base}-{worker_port(base, workers - 1)}")
            log.info("all components answer", extra={"role": settings.role})
            print(
                translate(
                    "Dialguard is up (%(role)s): SIP %(sip)s. Ctrl-C stops it.",
                    role=settings.role,
                    sip=", ".join(where) or "-",
                ),
                flush=True,
            )
            _say_tls(settings, fingerprint)
            return
        stop.wait(1.0)


def _answers(host: str, port: int) -> bool:
    from dialer.errors import SipUnreachable
    from dialer.sip.probe import sip_ping

    try:
        sip_ping(_local(host), port, timeout=_ANSWER_TIMEOUT_S)
    except (SipUnreachable, OSError):
        return False
    return True


def _announce(plan: DialerPlan) -> None:
    """The dialer's shape in the log, and a warning where it is not what a floor needs."""
    if plan.elsewhere:
        log.info("dialer workers on the dialer hosts", extra={"hosts": list(plan.elsewhere)})
        return
    if plan.pool is None:
        log.warning("no trunk and no test carrier: every call is refused")
        return
    log.info("dialer pool: %s", plan.pool.describe())
    if plan.pool.above_host:
        log.warning(
            "DIALGUARD_DIALER_WORKERS=%d is more than this host carries (%d): calls may fail",
            plan.pool.workers,
            plan.pool.sized,
        )
    if plan.carrier_port is not None:
        log.warning(
            "TEST CARRIER: no trunk is set, so calls go to the built-in test carrier on "
            "127.0.0.1:%d, which answers with a spoken line; set DIALGUARD_TRUNK_URI for "
            "real calls, DIALGUARD_TEST_CARRIER=off in production",
            plan.carrier_port,
        )


def private_data_dir(data_dir: Path) -> None:
    """DATA_DIR made, or tightened, to 0700: it holds the database, keys and recordings.

    With the directory closed to everyone else, a file below it that an older
    version created 0644 cannot be read by another user either.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours (a site's shared mount): left as it is
        if data_dir.stat().st_mode & 0o077:
            data_dir.chmod(0o700)


def run_up(settings: Settings) -> int:
    configure_logging(settings.log_level, "supervisor")
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    embedded: EmbeddedS3 | None = None
    supervisor: Supervisor | None = None
    try:
        preflight(settings)
        roles = settings.roles
        plan = plan_dialer(settings)  # the test carrier's line is made here: fails before S3
        settings = with_edge_secret(settings)
        fingerprint = prepare_edge(settings) if plan.edge else None
        stores = bool(roles & {"dialer", "transcribe", "console"})  # an edge alone keeps none
        if settings.embedded_s3 and stores:
            # the API and SIP ports are bound after weed starts: never one of weed's
            reserved = frozenset({settings.api_port, settings.sip_port, settings.sip_tls_port})
            embedded = EmbeddedS3(settings.s3_dir, reserved=reserved).start()
            assert embedded.credentials is not None
            settings = with_embedded_storage(
                settings,
                embedded.endpoint,
                embedded.credentials.access_key,
                embedded.credentials.secret_key,
            )
        if stores:
            prepare_storage(settings)
        if stop.is_set():
            return 0
        _announce(plan)
        children = role_children(settings, plan)
        supervisor = Supervisor(settings, children)
        supervisor.start_all()
        keeper = S3Keeper(embedded) if embedded is not None else None
        threading.Thread(  # in the command's language: a new thread starts with none
            target=contextvars.copy_context().run,
            args=(_wait_healthy, settings, stop, plan, fingerprint),
            daemon=True,
        ).start()
        while not stop.wait(0.5):
            if keeper is not None and keeper.tend() and embedded is not None:
                assert embedded.credentials is not None
                log.warning("embedded S3 moved to other ports; restarting every child")
                settings = with_embedded_storage(
                    settings,
                    embedded.endpoint,
                    embedded.credentials.access_key,
                    embedded.credentials.secret_key,
                )
                supervisor.restart_all(settings)
            supervisor.tend()
        return 0
    except PreflightFailed as exc:
        print(f"dialguard: {exc}", file=sys.stderr, flush=True)
        return 1
    except HintedError as exc:
        print(f"dialguard: {hinted(exc)}", file=sys.stderr, flush=True)
        return 1
    finally:
        if supervisor is not None:
            # pjsua2 takes a moment to shut down, and a host-sized pool stops many at once
            supervisor.stop_all(timeout=10.0 + 0.5 * len(supervisor.children))
        if embedded is not None:
            embedded.stop()
        log.info("stopped")

"""`dialguard up`: preflight, embedded services, and the supervised processes.

Process tree: this supervisor; the embedded SeaweedFS (unless an S3 endpoint
is configured); and one child each for the API, the dialer, the recording
uploader and N transcription workers. Children leave the terminal's process
group, so Ctrl-C reaches only the supervisor, which stops them in order
(API and dialer first, S3 last). Each child also dies with its parent
(PR_SET_PDEATHSIG), so a `kill -9` of the supervisor leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import BinaryIO

import httpx

from api.cli.doctor import (
    CheckResult,
    Status,
    check_api_port,
    check_ffmpeg,
    check_model,
    check_sip_port,
    open_database,
)
from api.errors import ApiError
from api.logs import configure_logging
from api.migrate import upgrade
from api.settings import Settings
from api.wiring import (
    dialer_config,
    key_ring,
    storage_copies,
    storage_targets,
    with_embedded_storage,
)
from recording.embedded_s3 import EmbeddedS3
from recording.errors import HintedError
from recording.storage import ensure_bucket, make_client

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_MAX_BACKOFF = 30.0


class PreflightFailed(Exception):
    """`up` cannot start; the message is the one line to show the operator."""


# --- children ------------------------------------------------------------------------


def _child_setup(name: str, settings: Settings) -> threading.Event:
    os.setpgid(0, 0)  # out of the terminal's group: the supervisor decides when we stop
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    configure_logging(settings.log_level, name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return stop


def run_api_child(settings: Settings) -> None:
    import uvicorn

    from api.web.app import build_app

    stop = _child_setup("api", settings)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
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
    from recording.db.engine import make_engine, session_factory

    sessions = session_factory(make_engine(settings.effective_database_url))
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


def run_front_child(
    ports: Sequence[int], legs: Sequence[int], secret: bytes, settings: Settings
) -> None:
    from api.wiring import front_config
    from dialer.process import run_front
    from recording.db.engine import make_engine, session_factory

    stop = _child_setup("dialer-front", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    run_front(front_config(settings, secret), sessions, ports, legs, stop)


def run_worker_child(
    index: int,
    ports: MutableSequence[int],
    legs: MutableSequence[int],
    secret: bytes,
    settings: Settings,
) -> None:
    from dataclasses import replace

    from api import __version__
    from api.wiring import dialer_config, dialer_site
    from dialer.process import run_worker

    stop = _child_setup(f"dialer-{index}", settings)
    config = replace(dialer_config(settings, __version__), front_secret=secret)
    run_worker(config, dialer_site(settings), stop, index, ports, legs)


def run_qa_child(settings: Settings) -> None:
    from qa_scoring.pack_store import active_pack_source
    from qa_scoring.worker import run_qa_child_loop
    from recording.db.engine import make_engine, session_factory

    stop = _child_setup("qa", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    # The pack an admin chose in the console, else DIALGUARD_QA_PACK; read before each batch.
    run_qa_child_loop(sessions, active_pack_source(sessions, settings.qa_pack), stop)


def dialer_children(settings: Settings, ctx: BaseContext) -> list[Child]:
    """The SIP side: a refusing endpoint without a trunk, else the front and its workers."""
    if settings.trunk_uri is None:
        return [Child("dialer", run_dialer_child)]
    n = settings.dialer_workers
    ports = ctx.Array("i", n, lock=False)
    legs = ctx.Array("i", n, lock=False)
    secret = os.urandom(32)  # one per run: tokens and nonces do not outlive it
    return [
        Child("dialer-front", functools.partial(run_front_child, ports, legs, secret)),
        *[
            Child(f"dialer-{i}", functools.partial(run_worker_child, i, ports, legs, secret))
            for i in range(n)
        ],
    ]


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
        load_engine(model_dir, settings.whisper_device, batch_size=0),  # 30 s: one window
        settings.whisper_model,
        announcements_dir(settings.spool_dir),
        phrases=load_phrase_book(settings.announcement_phrases),
        language=settings.announcement_language or None,
    )
    run_announcements(recogniser, stop)


def run_uploader_child(settings: Settings) -> None:
    from api.audit.chain import audit_to
    from recording.db.engine import make_engine, session_factory
    from recording.uploader import run_uploader

    stop = _child_setup("uploader", settings)
    sessions = session_factory(make_engine(settings.effective_database_url))
    audit = audit_to(sessions, lambda: datetime.now(UTC))
    run_uploader(sessions, settings.spool_dir, storage_copies(settings), audit, stop)


def run_transcriber_child(settings: Settings) -> None:
    from recording.db.engine import make_engine, session_factory
    from recording.store import fetch
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
    )


# --- supervision ---------------------------------------------------------------------


@dataclass
class Child:
    name: str
    target: Callable[[Settings], None]
    process: BaseProcess | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    """Starts children and restarts any that die, with backoff, until stopped."""

    def __init__(self, settings: Settings, children: list[Child]) -> None:
        self.settings = settings
        self.children = children
        self._ctx = multiprocessing.get_context("spawn")

    def _start(self, child: Child) -> None:
        child.process = self._ctx.Process(
            target=child.target, args=(self.settings,), name=child.name, daemon=False
        )
        child.process.start()
        child.started_at = time.monotonic()
        log.info("started", extra={"child": child.name, "pid": child.process.pid})

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def tend(self) -> None:
        """Restart dead children; a child that ran a while gets its backoff reset."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None or process.is_alive():
                continue
            if child.next_start == 0.0:
                if now - child.started_at > 60:
                    child.restarts = 0
                delay = min(_MAX_BACKOFF, 2.0**child.restarts)
                child.restarts += 1
                child.next_start = now + delay
                log.error(
                    "child exited; restarting",
                    extra={"child": child.name, "exitcode": process.exitcode, "in_s": delay},
                )
            elif now >= child.next_start:
                child.next_start = 0.0
                self._start(child)

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


def _require(result: CheckResult) -> None:
    if result.status is Status.FAIL:
        raise PreflightFailed(result.line)


def preflight(settings: Settings) -> None:
    """What must hold before anything starts: each failure is one line for the operator."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for check in (
        check_ffmpeg,
        lambda: check_sip_port(settings, allow_dialguard=False),
        lambda: check_api_port(settings, allow_dialguard=False),
        lambda: check_model(settings, load=True),
    ):
        _require(check())
    try:
        engine = open_database(settings)
        upgrade(engine)
        engine.dispose()
        log.info("database schema up to date")
        if settings.trunk_uri is not None:
            dialer_config(settings, "")
            from dialer.announcements import load_phrase_book

            load_phrase_book(settings.announcement_phrases)  # a bad file: one line, no start
        from qa_scoring import QaError, load_pack

        try:
            load_pack(settings.qa_pack)
        except QaError as exc:
            raise PreflightFailed(f"DIALGUARD_QA_PACK: {exc}") from None
    except ApiError as exc:
        raise PreflightFailed(f"{exc} - {exc.hint}") from None


def prepare_storage(settings: Settings) -> None:
    for target in storage_targets(settings):
        ensure_bucket(
            make_client(target, timeout=10.0),
            target,
            settings.retention_days,
            settings.retention_classes,
        )


def _wait_healthy(settings: Settings, stop: threading.Event, timeout: float = 120.0) -> None:
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=10.0).status_code == 200:
                log.info("all components healthy", extra={"console": url.removesuffix("/healthz")})
                print(
                    f"Dialguard is up: API http://{settings.api_host}:{settings.api_port}/docs "
                    f"SIP {settings.sip_host}:{settings.sip_port} (udp, tcp). Ctrl-C stops it.",
                    flush=True,
                )
                return
        stop.wait(1.0)


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
        if settings.embedded_s3:
            embedded = EmbeddedS3(settings.s3_dir).start()
            assert embedded.credentials is not None
            settings = with_embedded_storage(
                settings,
                embedded.endpoint,
                embedded.credentials.access_key,
                embedded.credentials.secret_key,
            )
        prepare_storage(settings)
        if stop.is_set():
            return 0
        children = [
            *dialer_children(settings, multiprocessing.get_context("spawn")),
            Child("uploader", run_uploader_child),
            *[
                Child(f"transcriber-{i}", run_transcriber_child)
                for i in range(settings.transcribe_workers)
            ],
            *([Child("announcements", run_announcements_child)] if settings.trunk_uri else []),
            Child("qa", run_qa_child),
            *([Child("webhooks", run_webhooks_child)] if settings.webhook_url else []),
            Child("api", run_api_child),
        ]
        supervisor = Supervisor(settings, children)
        supervisor.start_all()
        threading.Thread(target=_wait_healthy, args=(settings, stop), daemon=True).start()
        while not stop.wait(0.5):
            supervisor.tend()
        return 0
    except PreflightFailed as exc:
        print(f"dialguard: {exc}", file=sys.stderr, flush=True)
        return 1
    except HintedError as exc:
        print(f"dialguard: {exc} - {exc.hint}", file=sys.stderr, flush=True)
        return 1
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        if embedded is not None:
            embedded.stop()
        log.info("stopped")

"""Kamailio run by Dialguard itself: the SIP edge of `dialguard up`.

Like the embedded SeaweedFS (`recording.embedded_s3`): the config is
written into the data directory, Kamailio runs in the foreground
(`-DD -E`) with its log on stderr captured to a file there, and it dies
with the process that started it (PR_SET_PDEATHSIG). It is small on
purpose (a few children, 32 MiB shared memory): the edge only checks
logins and passes calls on, the workers carry the media.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from dialer.edge.config import EdgeConfig, render, render_secrets, render_tls
from dialer.errors import SipUnreachable
from dialer.sip.probe import sip_ping

log = logging.getLogger(__name__)

KAMAILIO = Path("/usr/sbin/kamailio")
#: Kamailio's shared memory holds every transaction until its timers end (seconds after
#: the call's last reply). 32 MB ran out at about 100 calls a second for a few seconds
#: (bench/edge_setup.py: "could not allocate shared memory", then calls refused and call
#: loads never released); 256 MB carried 280 a second with no failure. Pages are only
#: taken as they are used.
SHARED_MEMORY_MB = 256
PRIVATE_MEMORY_MB = 8
CONFIG_NAME = "kamailio.cfg"
SECRETS_NAME = "kamailio-secrets.cfg"
LOG_NAME = "kamailio.log"
PGID_NAME = "kamailio.pgid"
_PR_SET_PDEATHSIG = 1


class EdgeError(Exception):
    """Kamailio would not start or check its config; the message has its own words."""


def find_kamailio() -> Path:
    if KAMAILIO.is_file():
        return KAMAILIO
    found = shutil.which("kamailio")
    if found:
        return Path(found)
    raise EdgeError("kamailio is not installed (Debian: apt-get install kamailio)")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_config(config: EdgeConfig, secret: str, database_url: str, dispatcher_list: str) -> Path:
    """Write kamailio.cfg, its 0600 secrets include and the dispatcher list; the cfg's path."""
    directory = config.secrets_file.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(config.secrets_file, render_secrets(secret, database_url))
    config.dispatcher_list.write_text(dispatcher_list)
    config.tls_file.write_text(render_tls(config))
    path = directory / CONFIG_NAME
    path.write_text(render(config))
    return path


def check_config(path: Path, kamailio: Path | None = None) -> None:
    """`kamailio -c`: EdgeError with Kamailio's complaint if the config does not load."""
    result = subprocess.run(
        [str(kamailio or find_kamailio()), "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        errors = [
            line for line in result.stderr.splitlines() if "ERROR" in line or "CRITICAL" in line
        ]
        raise EdgeError("kamailio refused its config: " + " | ".join(errors[-3:])[:600])


def _die_with_parent(parent: int) -> None:  # pragma: no cover - in the child, before exec
    os.setsid()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def kill_leftovers(pgid_file: Path) -> int:
    """SIGKILL the Kamailio processes a killed predecessor left; how many there were.

    Kamailio's children outlive their main process when it is SIGKILLed (a
    supervisor that killed a hung edge, or `kill -9`), and keep its ports.
    Only processes named kamailio in the recorded process group are killed.
    """
    try:
        pgid = int(pgid_file.read_text().strip())
    except (OSError, ValueError):
        return 0
    killed = 0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        fields = text[text.rfind(")") + 2 :].split()
        if name == "kamailio" and len(fields) > 2 and int(fields[2]) == pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(stat_file.parent.name), signal.SIGKILL)
                killed += 1
    pgid_file.unlink(missing_ok=True)
    return killed


class EdgeProcess:
    """One Kamailio with the config at `config`; start/stop or use as a context manager."""

    def __init__(self, config: EdgeConfig, config_path: Path, kamailio: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.kamailio = kamailio or find_kamailio()
        self.log_path = config_path.parent / LOG_NAME
        self.pgid_file = config_path.parent / PGID_NAME
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def probe_host(self) -> str:
        host = self.config.host
        return "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - a wildcard bind

    def start(self, timeout: float = 30.0) -> Self:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        left = kill_leftovers(self.pgid_file)
        if left:
            log.warning("killed %d kamailio process(es) a killed edge left", left)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                str(self.kamailio),
                "-DD",
                "-E",
                "-m",
                str(SHARED_MEMORY_MB),
                "-M",
                str(PRIVATE_MEMORY_MB),
                "-f",
                str(self.config_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509
        )
        self.pgid_file.write_text(str(self._process.pid))
        log.info("edge started", extra={"pid": self._process.pid})

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise EdgeError(f"kamailio exited at start: {self.tail_log()}")
            if self.answers(1.0):
                return
            time.sleep(0.1)
        raise EdgeError(f"kamailio did not answer OPTIONS in {timeout:.0f} s")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def answers(self, timeout: float = 2.0) -> bool:
        try:
            sip_ping(self.probe_host, self.config.port, timeout=timeout)
        except (SipUnreachable, OSError):
            return False
        return True

    def tail_log(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "no log"
        wanted = [line for line in text.splitlines() if "ERROR" in line or "CRITICAL" in line]
        return " | ".join((wanted or text.splitlines() or ["no output"])[-lines:])[:600]

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("kamailio did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

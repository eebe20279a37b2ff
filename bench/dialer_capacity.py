"""Concurrent bridged calls through `dialguard up`: Kamailio edge, dialer worker pool, recording.

Usage: python bench/dialer_capacity.py [--calls 50] [--workers 25] [--talk 30]

Starts `dialguard up` (embedded SQLite and SeaweedFS) with a SIPp carrier on
the trunk, then SIPp agents place `--calls` calls at once through the edge,
each to its own number (the call policy caps calls per number), each talking
(G.711a RTP both ways) for `--talk` seconds. Prints how many calls were
bridged, the peak number bridged at the same moment (from the booked
attempts), CPU and memory of the whole product during the peak, and how
many recordings reached the spool. Target (issue 3): at least 50 at once on
a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import psutil
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.models import CallAttempt
from recording.db.engine import make_engine, session_factory
from recording.models import Recording

ROOT = Path(__file__).resolve().parent.parent
SIPP = ROOT / "tests" / "data" / "sipp"
DIALGUARD = Path(sys.executable).parent / "dialguard"


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def numbers(count: int) -> list[str]:
    """`count` valid numbers in a zone where it is daytime now, so no preset refuses the hour."""
    now = datetime.now(UTC)
    for prefix, width, zone in (
        ("+86138001", 5, "Asia/Shanghai"),
        ("+44207946", 4, "Europe/London"),
        ("+1212555", 4, "America/New_York"),
        ("+1310555", 4, "America/Los_Angeles"),
    ):
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return [f"{prefix}{i:0{width}d}" for i in range(100, 100 + count)]
    raise SystemExit("no zone in daytime")


def start_product(env: dict[str, str], api_port: int, log: TextIO, log_path: Path) -> Any:
    """`dialguard up`, once /healthz is green and the workers have had time to report."""
    up = subprocess.Popen([str(DIALGUARD), "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200:
                break
        if up.poll() is not None or time.monotonic() - started > 180:
            raise SystemExit(log_path.read_text()[-3000:])
        time.sleep(1)
    time.sleep(5)
    print(f"dialguard up green after {time.monotonic() - started:.1f} s")
    return up


class Sampler(threading.Thread):
    """CPU % and resident memory of the whole product, every 2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        root = psutil.Process(pid)
        self.tree = [root, *root.children(recursive=True)]
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        for p in self.tree:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
        while not self.done.wait(2):
            cpu = rss = 0.0
            for p in self.tree:
                with contextlib.suppress(psutil.Error):
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss / 2**20
            self.samples.append((cpu, rss))


def peak_overlap(booked: list[CallAttempt]) -> int:
    """Most calls bridged at one moment; started_at is the INVITE, so allow 2 s to answer."""
    edges = sorted(
        [(a.started_at.timestamp(), 1) for a in booked]
        + [(a.started_at.timestamp() + a.duration_s + 2.0, -1) for a in booked]
    )
    peak = live = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


def place_calls(
    dialed: list[str], sip_port: int, password: str, talk: int, timeout: str, work: Path
) -> list[subprocess.Popen[bytes]]:
    """One SIPp per agent: each digests its own Request-URI (SIPp's -auth_uri is per process)."""
    agents = []
    for i, number in enumerate(dialed):
        agents.append(
            subprocess.Popen(
                [
                    "sipp",
                    f"127.0.0.1:{sip_port}",
                    "-sf",
                    str(SIPP / "edge_agent_calls_talks.xml"),
                    "-s",
                    number,
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(free_port()),
                    "-au",
                    "agent1",
                    "-ap",
                    password,
                    "-auth_uri",
                    f"{number}@127.0.0.1:{sip_port}",
                    "-mi",
                    "127.0.0.1",
                    "-mp",
                    str(20000 + 4 * i),
                    "-m",
                    "1",
                    "-d",
                    str(talk * 1000),
                    "-timeout",
                    timeout,
                    "-nostdin",
                    "-trace_err",
                    "-error_file",
                    str(work / f"agent-{i}.err"),
                    "-trace_msg",
                    "-message_file",
                    str(work / f"agent-{i}.msg"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(0.1)
    return agents


_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)", re.M)


def _invites(trace: Path, direction: str) -> dict[str, float]:
    """Dialed number -> time of the last INVITE sent/received in a SIPp message trace."""
    found: dict[str, float] = {}
    text = trace.read_text(errors="replace") if trace.exists() else ""
    marks = list(_STAMP.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() : following.start() if following else len(text)]
        head = re.search(r"^INVITE sip:(\+?\d+)@", body, re.M)
        if head and f"message {direction}" in body[:200]:
            stamp = datetime.fromisoformat(f"{mark.group(1)} {mark.group(2)}").timestamp()
            found[head.group(1)] = stamp
    return found


def setup_delays(work: Path, calls: int) -> list[float]:
    """Seconds from the agent's INVITE reaching the worker to the worker's INVITE to the trunk.

    The agent's last INVITE (after the edge's challenge) and the
    carrier's received INVITE are matched by the dialed number, unique per call.
    """
    sent: dict[str, float] = {}
    for i in range(calls):
        sent |= _invites(work / f"agent-{i}.msg", "sent")
    received = _invites(work / "carrier.msg", "received")
    return sorted(received[n] - sent[n] for n in sent.keys() & received.keys())


def worker_memory(pid: int, sip_port: int) -> list[float]:
    """Resident MB of each dialer worker: the product's processes holding a SIP socket."""
    sizes = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            ports = {c.laddr.port for c in child.net_connections(kind="udp") if c.laddr}
            if ports and sip_port not in ports and not child.name().startswith("weed"):
                sizes.append(child.memory_info().rss / 2**20)
    return sorted(sizes)


def print_setup_and_memory(
    work: Path, calls: int, workers_mb: list[float], peak: int, sampler: Sampler
) -> None:
    top = max(sampler.samples, default=(0.0, 0.0))
    if top[0] > 0:
        print(f"bridged calls held per core at that load: {peak * 100 / top[0]:.0f}")
    delays = setup_delays(work, calls)
    if delays:
        p50, p99 = delays[len(delays) // 2], delays[max(0, int(len(delays) * 0.99) - 1)]
        print(
            f"setup delay added (agent INVITE at the worker -> INVITE to the trunk), "
            f"{len(delays)} calls: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {delays[-1] * 1000:.0f} ms"
        )
    if workers_mb:
        median = workers_mb[len(workers_mb) // 2]
        print(
            f"memory per dialer worker (RSS, {len(workers_mb)} workers): "
            f"median {median:.0f} MB, max {workers_mb[-1]:.0f} MB"
        )


def wait_booked(db: Path, calls: int) -> tuple[list[CallAttempt], int]:
    """(answered attempts, recordings spooled) once every call is booked, or after 60 s."""
    engine = make_engine(f"sqlite:///{db}")
    deadline = time.monotonic() + 60
    while True:
        with session_factory(engine)() as session:
            booked = list(session.scalars(select(CallAttempt).where(CallAttempt.answered)))
            spooled = len(list(session.scalars(select(Recording))))
        if spooled >= len(booked) >= calls or time.monotonic() > deadline:
            return booked, spooled
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--workers", type=int, default=25)
    parser.add_argument("--talk", type=int, default=30, help="seconds each call lasts")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is missing: apt install sip-tester")

    work = Path(tempfile.mkdtemp(prefix="dialguard-bench-"))
    sip_port, trunk_port, api_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALGUARD_")}
    env |= {
        "DIALGUARD_DATA_DIR": str(work / "data"),
        "DIALGUARD_SIP_PORT": str(sip_port),
        "DIALGUARD_API_PORT": str(api_port),
        "DIALGUARD_TRUNK_URI": f"sip:127.0.0.1:{trunk_port}",
        "DIALGUARD_CALLER_IDS": "+861058000000,+861058000001",
        "DIALGUARD_DIALER_WORKERS": str(args.workers),
        "DIALGUARD_TRANSCRIBE_WORKERS": "1",
        "DIALGUARD_LOG_LEVEL": "WARNING",
    }
    password = "bench-softphone-77"
    for cmd in (
        ["admin", "create-user", "agent1", "--role", "agent", "--password-stdin"],
        ["admin", "set-sip-password", "agent1", "--password-stdin"],
    ):
        subprocess.run(
            [str(DIALGUARD), *cmd],
            env=env,
            input=password + "\n",
            check=True,
            capture_output=True,
            text=True,
        )

    dialed = numbers(args.calls)
    carrier = (SIPP / "b2b_carrier_answer.xml").read_text()
    (work / "carrier.xml").write_text(carrier.replace(r"\+8613800138000", r"\+[0-9]+"))

    log = (work / "up.log").open("w")
    up = start_product(env, api_port, log, work / "up.log")
    timeout = f"{args.talk + 60}s"
    carrier_proc = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(work / "carrier.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(trunk_port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port()),
            "-m",
            str(args.calls),
            "-timeout",
            timeout,
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(work / "carrier.err"),
            "-trace_msg",
            "-message_file",
            str(work / "carrier.msg"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1)
    sampler = Sampler(up.pid)
    sampler.start()
    began = time.monotonic()
    agents = place_calls(dialed, sip_port, password, args.talk, timeout, work)
    codes = [p.wait() for p in agents]
    sampler.done.set()
    elapsed = time.monotonic() - began
    carrier_out, _ = carrier_proc.communicate(timeout=120)
    ok, failed = codes.count(0), len(codes) - codes.count(0)

    workers_mb = worker_memory(up.pid, sip_port)
    booked, spooled = wait_booked(work / "data" / "dialguard.db", args.calls)
    peak = peak_overlap(booked)
    up.send_signal(signal.SIGINT)
    up.wait(60)
    log.close()

    memory = psutil.virtual_memory().total / 2**30
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB; "
        f"Python {platform.python_version()}"
    )
    print(
        f"calls: {args.calls} placed at 10/s through the edge to {args.workers} workers, "
        f"{args.talk} s of G.711a RTP each way, recorded"
    )
    print(f"agents' SIPp: {ok} successful, {failed} failed, {elapsed:.1f} s")
    print(f"answered calls booked: {len(booked)}; bridged at the same moment (peak): {peak}")
    print(f"recordings spooled: {spooled}")
    if sampler.samples:
        top = max(sampler.samples)
        print(
            f"product CPU at peak: {top[0]:.0f}% (of {100 * (os.cpu_count() or 1)}%), "
            f"memory {max(s[1] for s in sampler.samples):.0f} MB in all"
        )
    print_setup_and_memory(work, args.calls, workers_mb, peak, sampler)
    if carrier_proc.returncode != 0:
        print("carrier SIPp:", carrier_out[-1500:])
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()

"""Concurrent bridged calls through `dialguard up`: Kamailio edge, dialer worker pool, recording.

Usage: python bench/dialer_capacity.py [--calls 50,100,150,200] [--workers N] [--talk 30]
                                       [--rate 10] [--pause 10] [--transcribers 0]

Starts `dialguard up` once (embedded SQLite and SeaweedFS; the pool the host's
sizing gives, or `--workers`: 200 calls need 100) with ONE SIPp carrier on the trunk,
then for each load ONE SIPp agent instance places that many calls (`-r` a
second, `-l`/`-m` the load) through the edge, each to its own number (the call
policy caps calls per number, so no number is dialed twice in a run), each
talking (G.711a RTP both ways) for `--talk` seconds. Per load it prints:

- calls attempted, bridged (answered at the carrier and ended by the agent's
  BYE), failed, with the reasons (SIPp's unexpected messages, the booked
  attempts' SIP status, error lines of the product's log);
- peak concurrent bridged calls (from the booked attempts' answer and talk time);
- the product's CPU (its process tree, from /proc via psutil: average over
  the load and the highest 2-s sample, and by component: workers, edge, S3,
  the rest) apart from the harness's (this process and the two SIPp
  instances); before the loads, the same with no call up;
- memory: the product's total (RSS summed, and PSS summed: shared pages
  counted once) and per dialer worker (RSS, PSS, USS), read at the peak;
- setup delay p50/p99: the agent's authenticated INVITE leaving SIPp to the
  worker's INVITE reaching the carrier (both SIPp message traces; edge, policy
  decision, recorders, caller ID);
- recording gaps: each answered call's stored recording (its encoded audio
  duration) against the call's talk time; pjsua2's recorders take a frame
  every 20 ms from a clocked conference bridge (silence when nobody speaks),
  so a recording shorter than the call by more than `GAP_S` lost frames.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import psutil
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.models import CallAttempt
from recording.db.engine import as_utc, make_engine, session_factory
from recording.models import Recording

ROOT = Path(__file__).resolve().parent.parent
SIPP = ROOT / "tests" / "data" / "sipp"
DIALGUARD = Path(sys.executable).parent / "dialguard"
GAP_S = 0.1  # 5 frames of 20 ms: a recording this much shorter than its call lost audio


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def numbers(first: int, count: int) -> list[str]:
    """`count` valid numbers from the `first`-th, in a zone where it is daytime now."""
    now = datetime.now(UTC)
    for prefix, width, zone in (
        ("+86138001", 5, "Asia/Shanghai"),
        ("+44207946", 4, "Europe/London"),
        ("+1212555", 4, "America/New_York"),
        ("+1310555", 4, "America/Los_Angeles"),
    ):
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 20:
            return [f"{prefix}{i:0{width}d}" for i in range(100 + first, 100 + first + count)]
    raise SystemExit("no zone in daytime")


def start_product(env: dict[str, str], api_port: int, log: TextIO, log_path: Path) -> Any:
    """`dialguard up`, once /healthz is green and every worker has had time to report."""
    up = subprocess.Popen([str(DIALGUARD), "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200:
                break
        if up.poll() is not None or time.monotonic() - started > 300:
            raise SystemExit(log_path.read_text()[-3000:])
        time.sleep(1)
    print(f"dialguard up green after {time.monotonic() - started:.1f} s", flush=True)
    return up


def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def component(p: psutil.Process) -> str:
    """Which part of the product a process is: dialer workers (the forkserver's children), the
    Kamailio edge, SeaweedFS, or the rest (supervisor, API, uploader, announcements, QA...)."""
    with contextlib.suppress(psutil.Error):
        if p.name().startswith("kamailio"):
            return "edge"
        if p.name().startswith("weed"):
            return "s3"
        parent = p.parent()
        if parent is not None and "multiprocessing.forkserver" in " ".join(parent.cmdline()):
            return "workers"
    return "rest"


def _short_lived(p: psutil.Process) -> bool:
    """A worker's encoder (ffmpeg, a second or less): counted in the worker's children's time."""
    with contextlib.suppress(psutil.Error):
        return p.name().startswith("ffmpeg")
    return True


class Sampler(threading.Thread):
    """CPU seconds of the product's tree and the harness every 2 s.

    Each long-lived process's cumulative user+system time plus that of the
    children it reaped (a worker's ffmpeg encodes), its last reading kept
    once it exits, so none is lost or counted twice between samples.
    """

    def __init__(self, product: int, harness: list[psutil.Process]) -> None:
        super().__init__(daemon=True)
        self.product = product
        self.harness = harness
        self.seen: dict[int, psutil.Process] = {}
        self.last: dict[int, float] = {}
        self.first: dict[int, float] = {}
        self.group: dict[int, str] = {}
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, product s, harness s)
        self.done = threading.Event()

    def _product(self) -> float:
        for p in tree(self.product):
            if p.pid not in self.seen and not _short_lived(p):
                self.seen[p.pid] = p
                self.group[p.pid] = component(p)
        for pid, p in self.seen.items():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                self.last[pid] = t.user + t.system + t.children_user + t.children_system
        return sum(self.last.values())

    def by_component(self) -> dict[str, float]:
        """CPU seconds of each component so far (since the sampler's first reading)."""
        out: dict[str, float] = {}
        for pid, seconds in self.last.items():
            group = self.group[pid]
            out[group] = out.get(group, 0.0) + seconds - self.first.get(pid, 0.0)
        return out

    def run(self) -> None:
        self._product()
        self.first = dict(self.last)
        while True:
            self.samples.append((time.monotonic(), self._product(), cpu_seconds(self.harness)))
            if self.done.wait(2):
                self.samples.append((time.monotonic(), self._product(), cpu_seconds(self.harness)))
                return

    def figures(self) -> tuple[float, float, float]:
        """(product average %, product highest 2-s %, harness average %) of one core."""
        if len(self.samples) < 2:
            return 0.0, 0.0, 0.0
        (t0, p0, h0), (t1, p1, h1) = self.samples[0], self.samples[-1]
        peak = max(
            (b[1] - a[1]) / (b[0] - a[0])
            for a, b in zip(self.samples, self.samples[1:], strict=False)
        )
        return 100 * (p1 - p0) / (t1 - t0), 100 * peak, 100 * (h1 - h0) / (t1 - t0)


@dataclass
class Memory:
    """One snapshot of the product's memory, MB."""

    rss_total: float = 0.0
    pss_total: float = 0.0
    workers: list[tuple[float, float, float]] = field(default_factory=list)  # (rss, pss, uss)


def memory_snapshot(pid: int) -> Memory:
    """The product's RSS and PSS summed, and each dialer worker's RSS, PSS, USS.

    A worker is a child whose command line is a multiprocessing child holding a
    UDP socket on a dialer port (DIALGUARD_DIALER_PORT_BASE and up); read from
    /proc/PID/smaps_rollup, so the shared pages of forked workers count once in PSS.
    """
    snap = Memory()
    for p in tree(pid):
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            snap.rss_total += info.rss / 2**20
            snap.pss_total += info.pss / 2**20
            if p.name().startswith(("kamailio", "weed")):
                continue
            ports = {c.laddr.port for c in p.net_connections(kind="udp") if c.laddr}
            if any(PORT_BASE <= port < PORT_BASE + 256 for port in ports):
                snap.workers.append((info.rss / 2**20, info.pss / 2**20, info.uss / 2**20))
    return snap


PORT_BASE = 5100  # DIALGUARD_DIALER_PORT_BASE's default, set by main()


def agent_scenario(work: Path, dialed: list[str], load: int) -> tuple[Path, Path]:
    """The edge agent scenario with the number from an injection file, one per call."""
    text = (SIPP / "edge_agent_calls_talks.xml").read_text().replace("[service]", "[field0]")
    scenario = work / "agent.xml"
    scenario.write_text(text)
    inject = work / f"numbers-{load}.csv"
    inject.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in dialed))
    return scenario, inject


def run_agents(
    work: Path, load: int, dialed: list[str], sip_port: int, password: str, args: Any
) -> subprocess.Popen[str]:
    """ONE SIPp placing `load` calls at `--rate` a second, at most `load` at once."""
    scenario, inject = agent_scenario(work, dialed, load)
    tag = f"agent-{load}"
    return subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{sip_port}",
            "-sf",
            str(scenario),
            "-inf",
            str(inject),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-au",
            "agent1",
            "-ap",
            password,
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port()),
            "-r",
            str(args.rate),
            "-l",
            str(load),
            "-m",
            str(load),
            "-d",
            str(args.talk * 1000),
            "-timeout",
            f"{args.talk + 120}s",
            "-max_socket",
            "4096",
            # A 180 that the edge's UDP processes forward after the 200 (they may reorder
            # under load) is discarded, as a UA's transaction layer does, not a failed call;
            # it is still logged in the error file.
            "-default_behaviors",
            "all,-abortunexp",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(work / f"{tag}.err"),
            "-trace_msg",
            "-message_file",
            str(work / f"{tag}.msg"),
            "-trace_stat",
            "-stf",
            str(work / f"{tag}.csv"),
            "-fd",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def sipp_counts(stat_file: Path) -> dict[str, int]:
    """The last row's cumulative counters of a SIPp -trace_stat file."""
    with contextlib.suppress(OSError, StopIteration):
        rows = list(csv.reader(stat_file.open(), delimiter=";"))
        head, last = rows[0], rows[-1]
        return {
            k: int(v)
            for k, v in zip(head, last, strict=False)
            if k.endswith("(C)") and v.strip().isdigit()
        }
    return {}


def sipp_peak(stat_file: Path, column: str = "CurrentCall") -> int:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        rows = list(csv.reader(stat_file.open(), delimiter=";"))
        i = rows[0].index(column)
        return max(int(r[i]) for r in rows[1:] if len(r) > i and r[i].isdigit())
    return 0


_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)", re.M)


def invites(trace: Path, direction: str) -> dict[str, float]:
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


def unexpected(err_file: Path) -> Counter[str]:
    """What went unexpectedly, from SIPp's error log: a message that failed a call, or one it
    tolerated (a 180 after the 200, a BYE answered 408 by the edge before the worker's 200)."""
    text = err_file.read_text(errors="replace") if err_file.exists() else ""
    reasons: Counter[str] = Counter()
    for m in re.finditer(
        r"(Aborting|Continuing) call on unexpected message[^\n]*\(index (\d+)\), "
        r"received '([^\n']+)",
        text,
    ):
        how = "tolerated" if m.group(1) == "Continuing" else "failed"
        reasons[f"{how}: {m.group(3).strip()[:40]} at step {m.group(2)}"] += 1
    for m in re.finditer(r"(Call-Id: \S+ timed out|Max Retrans\w*)", text):
        reasons[re.sub(r"\S+ (timed out)", r"\1", m.group(1))[:60]] += 1
    dead = len(re.findall(r"Dead call \S+ \((?!successful)", text))
    if dead:
        reasons["messages for a call SIPp had aborted"] += dead
    return reasons


def product_errors(log_path: Path, since: int) -> tuple[Counter[str], int]:
    """ERROR lines the product logged from byte `since` on (their message), and the log's end."""
    with log_path.open("rb") as f:
        f.seek(since)
        data = f.read()
    found: Counter[str] = Counter()
    for line in data.decode(errors="replace").splitlines():
        if re.search(r'"level":\s*"(error|critical)"', line) or " ERROR " in line:
            m = re.search(r'"msg":\s*"([^"]{0,70})', line)
            child = re.search(r'"child":\s*"([^"]+)"', line)
            what = m.group(1) if m else line[-80:]
            what += f" ({child.group(1)})" if child else ""
            found[what.strip()] += 1
    return found, since + len(data)


def booked_since(sessions: Any, before: set[str]) -> list[tuple[CallAttempt, Recording | None]]:
    """The attempts booked since `before` (call IDs of the earlier loads) was taken."""
    with sessions() as session:
        rows = session.execute(
            select(CallAttempt, Recording).outerjoin(
                Recording, Recording.id == CallAttempt.recording_id
            )
        ).all()
        return [(a, r) for a, r in rows if a.call_id not in before]


def wait_booked(sessions: Any, since: set[str], calls: int, limit_s: float = 120) -> list[Any]:
    """The load's booked attempts, once all are booked with their recordings (or after limit_s)."""
    deadline = time.monotonic() + limit_s
    while True:
        rows = booked_since(sessions, since)
        answered = [a for a, _ in rows if a.answered]
        if (len(answered) >= calls and all(r is not None for a, r in rows if a.answered)) or (
            time.monotonic() > deadline
        ):
            return rows
        time.sleep(2)


def peak_overlap(rows: list[tuple[CallAttempt, Recording | None]]) -> int:
    """Most calls bridged at one moment: each from its answer (start + ring) for its talk time."""
    edges: list[tuple[float, int]] = []
    for a, _ in rows:
        if a.answered:
            start = as_utc(a.started_at).timestamp() + a.ring_s
            edges += [(start, 1), (start + a.duration_s, -1)]
    peak = live = 0
    for _, step in sorted(edges):
        live += step
        peak = max(peak, live)
    return peak


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def print_memory(when: str, memory: Memory) -> None:
    w = memory.workers
    if not w:
        return
    med = sorted(w, key=lambda x: x[2])[len(w) // 2]
    print(
        f"{when}: product RSS summed {memory.rss_total:.0f} MB, PSS summed "
        f"{memory.pss_total:.0f} MB; {len(w)} dialer workers: median RSS {med[0]:.0f} MB, "
        f"PSS {med[1]:.1f} MB, USS {med[2]:.1f} MB (max USS {max(x[2] for x in w):.1f} MB); "
        f"workers' PSS summed {sum(x[1] for x in w):.0f} MB",
        flush=True,
    )


def recording_gaps(answered: list[tuple[CallAttempt, Recording | None]]) -> list[str]:
    """Print and return the answered calls whose recording is missing or lost frames."""
    gaps = []
    for a, r in answered:
        if r is None:
            gaps.append(f"{a.call_id}: no recording")
        elif a.duration_s - r.duration_s > GAP_S:
            gaps.append(f"{a.call_id}: {r.duration_s:.2f} s of {a.duration_s:.2f} s")
    print(
        f"recordings: {sum(1 for _, r in answered if r is not None)} stored for "
        f"{len(answered)} answered calls; with a gap over {GAP_S * 1000:.0f} ms or missing: "
        f"{len(gaps)}" + (f" e.g. {gaps[:3]}" if gaps else "")
    )
    short = sorted(a.duration_s - r.duration_s for a, r in answered if r is not None)
    if short:
        print(
            f"  call talk time minus recorded audio: max {short[-1] * 1000:.0f} ms, "
            f"median {short[len(short) // 2] * 1000:.0f} ms"
        )
    return gaps


def run_load(
    load: int, first: int, ctx: dict[str, Any], args: Any, up: Any, carrier: psutil.Process
) -> bool:
    """One load: place the calls, wait them out, print the figures. True: 0 calls failed."""
    work: Path = ctx["work"]
    dialed = numbers(first, load)
    since = {a.call_id for a, _ in booked_since(ctx["sessions"], set())}
    print(f"\n=== {load} calls; load average before: {os.getloadavg()}", flush=True)
    agents = run_agents(work, load, dialed, ctx["sip_port"], ctx["password"], args)
    harness = [psutil.Process(), psutil.Process(agents.pid), carrier]
    sampler = Sampler(up.pid, harness)
    sampler.start()
    began = time.monotonic()
    # the memory at the peak: every call placed (load / rate s), all talking
    time.sleep(min(load / args.rate + args.talk / 2, load / args.rate + args.talk - 3))
    memory = memory_snapshot(up.pid)
    load_avg = os.getloadavg()
    _, err = agents.communicate(timeout=args.talk + 600)
    sampler.done.set()
    sampler.join()
    elapsed = time.monotonic() - began
    counts = sipp_counts(work / f"agent-{load}.csv")
    rows = wait_booked(ctx["sessions"], since, counts.get("SuccessfulCall(C)", load))
    cpu_avg, cpu_peak, harness_avg = sampler.figures()
    errors, ctx["log_at"] = product_errors(ctx["log_path"], ctx["log_at"])

    answered = [(a, r) for a, r in rows if a.answered]
    ok = counts.get("SuccessfulCall(C)", 0)
    failed = load - ok
    reasons = unexpected(work / f"agent-{load}.err")
    reasons.update(f"booked {a.sip_status} {a.sip_reason[:40]}" for a, _ in rows if not a.answered)
    sent = invites(work / f"agent-{load}.msg", "sent")
    got = invites(work / "carrier.msg", "received")
    delays = sorted(got[n] - sent[n] for n in set(dialed) & sent.keys() & got.keys())

    cores = os.cpu_count() or 1
    span = sampler.samples[-1][0] - sampler.samples[0][0] if sampler.samples else 1.0
    split = ", ".join(
        f"{k} {100 * v / span:.0f}%" for k, v in sorted(sampler.by_component().items())
    )
    print(f"load average at the peak: {load_avg[0]:.2f}, {load_avg[1]:.2f}, {load_avg[2]:.2f}")
    print(f"calls attempted {load}, bridged {ok}, failed {failed} ({elapsed:.0f} s)")
    if reasons or failed:
        print(f"  failure reasons: {dict(reasons) or 'none recorded'}")
    said = [ln for ln in err.splitlines() if "rror" in ln or "bort" in ln]
    if said:
        print(f"  agent SIPp said: {said[-3:]}")
    if errors:
        print(f"  product ERROR lines: {dict(errors.most_common(8))}")
    print(
        f"answered and booked {len(answered)}; peak concurrent bridged "
        f"{peak_overlap(rows)} (booked), {sipp_peak(work / f'agent-{load}.csv')} (agent SIPp)"
    )
    print(
        f"product CPU: {cpu_avg:.0f}% average, {cpu_peak:.0f}% highest 2-s sample "
        f"(of {100 * cores}%); harness (bench + 2 SIPp): {harness_avg:.0f}% average"
    )
    print(f"  product CPU by component (average): {split}")
    print_memory("memory at the peak", memory)
    if delays:
        print(
            f"setup delay (agent's authenticated INVITE -> INVITE at the carrier), "
            f"{len(delays)} calls: p50 {pct(delays, 0.5) * 1000:.1f} ms, "
            f"p99 {pct(delays, 0.99) * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
        )
    gaps = recording_gaps(answered)
    sys.stdout.flush()
    return failed == 0 and not gaps and len(answered) == load


def measure_idle(product: int, carrier: int) -> None:
    """The product's CPU with every worker up and no call, by component, for 10 s."""
    quiet = Sampler(product, [psutil.Process(), psutil.Process(carrier)])
    quiet.start()
    time.sleep(10)
    quiet.done.set()
    quiet.join()
    span = quiet.samples[-1][0] - quiet.samples[0][0]
    split = ", ".join(f"{k} {100 * v / span:.0f}%" for k, v in sorted(quiet.by_component().items()))
    print(f"idle product CPU (no call, 10 s): {quiet.figures()[0]:.0f}% ({split})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", default="50", help="loads, comma-separated: 50,100,150,200")
    parser.add_argument("--workers", type=int, default=0, help="0: auto (the host's sizing)")
    parser.add_argument("--talk", type=int, default=30, help="seconds each call lasts")
    parser.add_argument("--rate", type=float, default=10, help="new calls a second")
    parser.add_argument("--pause", type=int, default=10, help="seconds between loads")
    parser.add_argument(
        "--transcribers",
        type=int,
        default=0,
        help="transcription workers beside the dialer (0: none, as on a dialer host; "
        "transcription has its own benchmark)",
    )
    args = parser.parse_args()
    loads = [int(x) for x in args.calls.split(",") if x.strip()]
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is missing: apt install sip-tester")

    work = Path(tempfile.mkdtemp(prefix="dialguard-bench-"))
    sip_port, trunk_port, api_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALGUARD_")}
    env |= {
        "DIALGUARD_DATA_DIR": str(work / "data"),
        "DIALGUARD_SIP_PORT": str(sip_port),
        "DIALGUARD_API_PORT": str(api_port),
        "DIALGUARD_DIALER_PORT_BASE": str(PORT_BASE),
        "DIALGUARD_TRUNK_URI": f"sip:127.0.0.1:{trunk_port}",
        "DIALGUARD_CALLER_IDS": "+861058000000,+861058000001",
        "DIALGUARD_DIALER_WORKERS": str(args.workers),
        "DIALGUARD_TRANSCRIBE_WORKERS": str(args.transcribers),
        "DIALGUARD_LOG_LEVEL": "WARNING",
        # One SIPp stands in for every agent, from one address: at 10 calls a second that is
        # ~40 requests a second, which the edge's per-source flood ban (64 in 2 s) would ban.
        "DIALGUARD_EDGE_BAN_FLOOD_REQUESTS": "100000",
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
    carrier_xml = (SIPP / "b2b_carrier_answer.xml").read_text()
    (work / "carrier.xml").write_text(carrier_xml.replace(r"\+8613800138000", r"\+[0-9]+"))

    memory = psutil.virtual_memory().total / 2**30
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB; "
        f"Python {platform.python_version()}; loads {loads}, {args.talk} s of G.711a RTP each "
        f"way per call, {args.rate:g} new calls/s, recorded; pool: "
        f"{args.workers or 'auto'} workers; load average before start: {os.getloadavg()}",
        flush=True,
    )
    log_path = work / "up.log"
    log = log_path.open("w")
    up = start_product(env, api_port, log, log_path)
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
            str(sum(loads)),
            "-timeout",
            f"{(args.talk + 200) * len(loads) + 600}s",
            "-max_socket",
            "4096",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(work / "carrier.err"),
            "-trace_msg",
            "-message_file",
            str(work / "carrier.msg"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # every worker up: the pool's figure in the log, then wait for the workers' SIP ports
    time.sleep(5)
    print_memory("idle", memory_snapshot(up.pid))
    measure_idle(up.pid, carrier_proc.pid)
    ctx: dict[str, Any] = {
        "work": work,
        "sip_port": sip_port,
        "password": password,
        "sessions": session_factory(make_engine(f"sqlite:///{work / 'data' / 'dialguard.db'}")),
        "log_path": log_path,
        "log_at": 0,
    }
    passed = []
    first = 0
    try:
        for load in loads:
            if run_load(load, first, ctx, args, up, psutil.Process(carrier_proc.pid)):
                passed.append(load)
            first += load
            time.sleep(args.pause)
    finally:
        carrier_proc.terminate()
        up.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            up.wait(90)
        log.close()
    print(f"\nloads with every call bridged and recorded without gaps: {passed}")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()

"""CPU cost of TLS + SRTP per call against UDP + plain RTP, through the Kamailio edge to real
dialer workers: the edge's CPU and the workers' CPU apart, the harness's not counted.

Usage: python bench/edge_tls_cost.py [--calls 4] [--talk 10] [--rounds 4] [--workers 2]

The edge as `dialguard up` configures it (dialer/edge/config.py) on
127.0.0.1 over a migrated SQLite database, in front of `--workers` real
dialer workers (the pjsua2 B2BUA behind the edge, with the default SRTP
policy: plain RTP allowed over UDP, SRTP required over TLS, both parties
recorded), each bridging to its own SIPp carrier that answers with plain
G.711a RTP. Debian's baresip is the agents' softphone; a round is `--calls`
baresips at once (each its own process, so each TLS call makes its own TLS
connection and handshake, as a softphone's first call after start does),
each talking `--talk` seconds, in two modes that take turns round by round:

- **UDP + RTP**: baresip to the edge's UDP port, RTP/AVP;
- **TLS + SRTP**: baresip to the edge's TLS port (TLS 1.2+, the edge's
  self-signed certificate), RTP/SAVP with SDES keys (`mediaenc=srtp-mand`),
  AES_CM_128_HMAC_SHA1_80.

Media goes between the softphone and the worker; the edge carries SIP only.
CPU is read from /proc/PID/task/*/schedstat (every thread, every 50 ms) for
the edge (every Kamailio process) and for the workers, each with its idle
rate (dispatcher probes, timers; measured 5 s before the rounds) subtracted,
and divided by the calls; the median round per mode is printed. The harness
(this process, baresip, SIPp) is measured apart and not counted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the tests' edge helpers
sys.path.insert(0, str(BENCH))  # srtp_cost's meter, media and worker; edge_harness

from edge_harness import group_pids, own_cpu_s
from srtp_cost import (
    METER,
    NUMBER,
    _cpu_model,
    _pjsua_version,
    calls_failed,
    free_port,
    prepare_media,
    spawn_worker,
    start_carrier,
)

from dialer.edge.config import EdgeConfig
from dialer.edge.dispatch import dispatcher_list
from dialer.edge.process import EdgeProcess, write_config
from dialer.edge.tls import ensure_self_signed
from dialer.edge.trust import EdgeTrust
from dialer.sip.config import B2buaConfig
from dialer.sip.probe import wait_answering
from tests.dialer.edge.conftest import AGENTS, migrated_sqlite

AGENT = "alice"


def _tls_offer(port: int) -> str:
    """What the edge's TLS port negotiates with an OpenSSL client (baresip's is OpenSSL too)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        cipher = tls.cipher()
        return f"{tls.version()} {cipher[0] if cipher else '?'}"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Mode:
    name: str
    transport: str  # udp or tls
    mediaenc: str  # baresip's account parameter; "" offers plain RTP
    edge_ms: list[float] = field(default_factory=list)  # per call, per round
    worker_ms: list[float] = field(default_factory=list)
    harness_ms: list[float] = field(default_factory=list)
    failed: int = 0


@dataclass
class Rig:
    work: Path
    edge: EdgeProcess
    edge_pids: list[int]
    worker_pids: list[int]
    tls: str = "?"  # the version and cipher the TLS port negotiates
    edge_idle: float = 0.0  # CPU seconds a second
    worker_idle: float = 0.0

    def edge_cpu(self) -> float:
        return sum(METER.cpu_s(pid) for pid in self.edge_pids)

    def worker_cpu(self) -> float:
        return sum(METER.cpu_s(pid) for pid in self.worker_pids)

    def measure_idle(self, seconds: float) -> None:
        e0, w0, t0 = self.edge_cpu(), self.worker_cpu(), time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - t0
        self.edge_idle = (self.edge_cpu() - e0) / took
        self.worker_idle = (self.worker_cpu() - w0) / took

    def baresip(self, mode: Mode, talk_s: int) -> subprocess.Popen[str]:
        home = self.work / f"baresip-{time.monotonic_ns()}"
        home.mkdir()
        (home / "config").write_text(
            "sip_listen 127.0.0.1:0\n"
            "sip_verify_server no\n"
            "audio_player aubridge,none\n"
            f"audio_source aufile,{self.work / 'said.wav'}\n"
            "audio_alert aubridge,none\n"
            "module_path /usr/lib/baresip/modules\n"
            "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule srtp.so\n"
            "module_app account.so\nmodule_app menu.so\n"
        )
        config = self.edge.config
        port = config.tls_port if mode.transport == "tls" else config.port
        enc = f";mediaenc={mode.mediaenc}" if mode.mediaenc else ""
        (home / "accounts").write_text(
            f"<sip:{AGENT}@127.0.0.1:{port};transport={mode.transport}>"
            f";auth_pass={AGENTS[AGENT]};regint=0{enc}\n"
        )
        return subprocess.Popen(
            ["baresip", "-f", str(home), "-e", f"d {NUMBER}", "-t", str(talk_s)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def round(self, mode: Mode, calls: int, talk_s: int, *, count: bool = True) -> None:
        e0, w0, t0 = self.edge_cpu(), self.worker_cpu(), time.monotonic()
        h0 = own_cpu_s() + _children_cpu_s()
        phones = [self.baresip(mode, talk_s) for _ in range(calls)]
        mode.failed += calls_failed(phones, mode.name, mode.mediaenc, talk_s)
        time.sleep(1.5)  # the BYEs through the edge, the workers' BYE to the carrier, merges
        took = time.monotonic() - t0
        edge = self.edge_cpu() - e0 - self.edge_idle * took
        worker = self.worker_cpu() - w0 - self.worker_idle * took
        harness = own_cpu_s() + _children_cpu_s() - h0
        if count:
            mode.edge_ms.append(1000 * edge / calls)
            mode.worker_ms.append(1000 * worker / calls)
            mode.harness_ms.append(1000 * harness / calls)


def _start_edge(work: Path, url: str, secret: str, port: int, ports: list[int]) -> EdgeProcess:
    cert, key = ensure_self_signed(work / "tls", "127.0.0.1", datetime.datetime.now(datetime.UTC))
    config = EdgeConfig(
        host="127.0.0.1",
        port=port,
        tls_port=free_port(socket.SOCK_STREAM),
        realm="dialguard",
        algorithm="MD5",
        dispatcher_list=work / "dispatcher.list",
        tls_cert=cert,
        tls_key=key,
        rpc_port=free_port(socket.SOCK_STREAM),
        secrets_file=work / "kamailio-secrets.cfg",
    )
    path = write_config(config, secret, url, dispatcher_list("127.0.0.1", ports))
    return EdgeProcess(config, path).start(timeout=30)


def _start_worker(
    work: Path, i: int, secret: str, edge_port: int
) -> tuple[Any, subprocess.Popen[bytes], int]:
    """A real dialer worker behind the edge, and the SIPp carrier it bridges to."""
    port, trunk_port = free_port(), free_port()
    carrier = start_carrier(work, trunk_port)
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=work / "calls",
        secret=os.urandom(32),
        edge=EdgeTrust(secret, frozenset({"127.0.0.1"}), f"127.0.0.1:{edge_port}"),
        rtp_port=30000 + 40 * i,
        rtp_port_range=40,
    )
    return spawn_worker(config, login=False), carrier, port


def _report(args: argparse.Namespace, rig: Rig, modes: list[Mode], loads: list[float]) -> None:
    print(
        f"conditions: {len(os.sched_getaffinity(0))} cores ({_cpu_model()}), load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the rounds; Kamailio edge (UDP, and TLS "
        f"negotiating {rig.tls} with a self-signed ECDSA P-256 certificate; SQLite) before "
        f"{args.workers} dialer workers (pjsua2 {_pjsua_version()}, default SRTP policy, both "
        f"parties recorded), a SIPp carrier each (plain RTP); baresip agents, {args.calls} "
        f"calls at once x {args.rounds} rounds per mode, modes interleaved, each softphone "
        f"running {args.talk} s (one TLS connection per call); G.711a 8 kHz, 20 ms frames "
        "both ways; CPU from schedstat, idle subtracted "
        f"(edge {100 * rig.edge_idle:.1f}%, workers {100 * rig.worker_idle:.1f}% of a core)"
    )
    base_edge = statistics.median(modes[0].edge_ms)
    base_worker = statistics.median(modes[0].worker_ms)
    for m in modes:
        edge_mid, worker_mid = statistics.median(m.edge_ms), statistics.median(m.worker_ms)
        print(
            f"{m.name:11s} edge {edge_mid:6.2f} ms CPU per call (rounds {min(m.edge_ms):.2f}-"
            f"{max(m.edge_ms):.2f}, {edge_mid - base_edge:+.2f} ms); workers "
            f"{worker_mid:7.1f} ms per call (rounds {min(m.worker_ms):.1f}-"
            f"{max(m.worker_ms):.1f}, {worker_mid - base_worker:+.1f} ms); harness "
            f"{statistics.median(m.harness_ms):.0f} ms per call, not counted; {m.failed} failed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4, help="calls at once (2 per worker)")
    parser.add_argument("--talk", type=int, default=10, help="seconds each softphone runs")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("baresip") is None or shutil.which("sipp") is None:
        raise SystemExit("needs baresip and sipp (Debian: baresip, sip-tester)")
    METER.start()
    modes = [Mode("UDP + RTP", "udp", ""), Mode("TLS + SRTP", "tls", "srtp-mand")]
    loads: list[float] = []
    started: list[tuple[Any, subprocess.Popen[bytes], int]] = []
    edge: EdgeProcess | None = None
    with tempfile.TemporaryDirectory(prefix="edge-tls-cost-") as tmp:
        work = Path(tmp)
        prepare_media(work, carrier_s=args.talk + 10, said_s=args.talk + 5)
        url = migrated_sqlite(work)
        secret = secrets.token_hex(32)
        edge_port = free_port()
        try:
            for i in range(args.workers):
                started.append(_start_worker(work, i, secret, edge_port))
            for process, _, port in started:
                wait_answering("127.0.0.1", port, process)
                METER.watch(process.pid)
            edge = _start_edge(work, url, secret, edge_port, [port for _, _, port in started])
            edge_pids = group_pids(edge.pid or 0)
            for pid in edge_pids:
                METER.watch(pid)
            rig = Rig(work, edge, edge_pids, [p.pid for p, _, _ in started])
            rig.tls = _tls_offer(edge.config.tls_port)
            time.sleep(2)  # the dispatcher's first probes mark the workers up
            for mode in modes:
                rig.round(mode, args.calls, args.talk, count=False)  # warm-up
            rig.measure_idle(5)
            for r in range(args.rounds):
                for mode in modes[r % 2 :] + modes[: r % 2]:
                    rig.round(mode, args.calls, args.talk)
                    loads.append(os.getloadavg()[0])
        finally:
            if edge is not None:
                edge.stop()
            for process, sipp, _ in started:
                process.terminate()
                process.join(15)
                sipp.kill()
                sipp.wait()
    _report(args, rig, modes, loads)


if __name__ == "__main__":
    main()

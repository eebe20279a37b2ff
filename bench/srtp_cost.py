"""CPU cost of SRTP on a dialer worker: the same calls with plain RTP and with SRTP.

Usage: python bench/srtp_cost.py [--calls 2] [--talk 20] [--rounds 4]

A standalone dialer worker (the pjsua2 B2BUA, digest login, recording both
parties) on 127.0.0.1, a SIPp carrier answering with plain G.711a RTP, and
Debian's baresip as the agents' softphones: `--calls` at once (a worker
carries two bridged calls), each talking `--talk` seconds, `--rounds` times,
for three workers side by side whose rounds take turns:

- plain, SRTP off: `DIALGUARD_SRTP=off`, baresip offers RTP/AVP;
- plain, SRTP optional: the default policy, baresip offers RTP/AVP (what the
  SRTP adapter costs when it passes plain RTP through);
- SRTP: the default policy, baresip offers RTP/SAVP with SDES keys
  (`mediaenc=srtp-mand`), AES_CM_128_HMAC_SHA1_80.

The worker's CPU time (every thread, from /proc/PID/task/*/schedstat, read
every 50 ms so threads that end are counted) is taken before and after each
round; its idle rate, measured for 5 s
before the calls, is subtracted, and the rest is divided by the call-seconds
placed; the median round is printed. TLS for SIP is the edge's (Kamailio's)
cost, not the worker's, and is not measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.calls import CallRecord
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm, Credential
from dialer.sip.media_policy import SrtpPolicy
from dialer.sip.probe import wait_answering

ROOT = Path(__file__).resolve().parent.parent
CARRIER = ROOT / "tests" / "data" / "sipp" / "b2b_carrier_answer.xml"
SAMPLE_PCAP = 'play_pcap_audio="/usr/share/sip-tester/g711a.pcap"'
NUMBER = "13800138000"
PASSWORD = "bench-secret"


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CpuMeter(threading.Thread):
    """CPU seconds each watched process has run, every thread, to the nanosecond.

    /proc/PID/stat counts in 10 ms ticks, and a round of calls costs a worker
    a few hundred milliseconds. Each thread's /proc/PID/task/TID/schedstat is
    exact but leaves with the thread, and pjsua2 ends the conference bridge's
    clock thread (which mixes and records every call) a second after the last
    call and starts a new one with the next. So every thread is read every
    50 ms and its last reading kept: a thread's final 50 ms at most are lost.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._pids: set[int] = set()
        self._ns: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def _read(self) -> None:
        with self._lock:
            for pid in self._pids:
                with contextlib.suppress(OSError):
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        with contextlib.suppress(OSError, IndexError, ValueError):
                            ns = int((task / "schedstat").read_text().split()[0])
                            self._ns[(pid, task.name)] = ns

    def run(self) -> None:
        while True:
            self._read()
            time.sleep(0.05)

    def cpu_s(self, pid: int) -> float:
        self._read()
        with self._lock:
            return sum(ns for (p, _), ns in self._ns.items() if p == pid) / 1e9


METER = CpuMeter()


# --- the worker, in its own process ------------------------------------------------------------


def _credentials(username: str) -> Credential | None:
    if username == "agent1":
        return Credential.from_password("agent1", "dialguard", PASSWORD, (Algorithm.MD5,))
    return None


def _no_login(username: str) -> Credential | None:
    """Behind the edge no agent logs in to the worker: the edge's mark vouches for a call."""
    return None


def _allow(
    e164: str, request_id: int | None = None, call_id: str | None = None, agent: str = ""
) -> tuple[bool, str, str]:
    return True, "allowed", "Allowed"


def _finished(record: CallRecord) -> None:
    if record.recording is not None:
        record.recording.unlink(missing_ok=True)  # the bench keeps no audio


def _serve(config: B2buaConfig, login: bool) -> None:
    from dialer.sip.b2bua import B2bua  # pjsua2 in the child only

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    B2bua(config, _credentials if login else _no_login, _allow, _finished).run(stop)


def spawn_worker(config: B2buaConfig, *, login: bool = True) -> BaseProcess:
    """A dialer worker in a process of its own, started: spawned, not forked from this
    threaded process, so pjsua2 starts clean (and is never loaded here).

    `login`: agents log in to it with digest (a standalone worker); without, it takes
    the calls an edge passes it (bench/edge_tls_cost.py).
    """
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(config, login))
    process.start()
    return process


# --- the peers ----------------------------------------------------------------------------------


def start_carrier(work: Path, trunk_port: int, *options: str) -> subprocess.Popen[bytes]:
    """The SIPp carrier a worker bridges to, answering with `work`/carrier.xml's plain RTP;
    `options` go to SIPp before its own timeout (e.g. `-m CALLS`, to end after them)."""
    return subprocess.Popen(
        [
            *("sipp", "-sf", str(work / "carrier.xml"), "-i", "127.0.0.1"),
            *("-p", str(trunk_port), "-mi", "127.0.0.1", "-mp", str(free_port())),
            *(*options, "-timeout", "3600s", "-nostdin"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def prepare_media(work: Path, carrier_s: int, said_s: int) -> None:
    """What the calls carry, written into `work`: the carrier's scenario with `carrier_s`
    seconds of RTP, the softphones' `said_s` second tone, and the workers' recording folder."""
    (work / "calls").mkdir()
    noise_pcap(work / "carrier.pcap", carrier_s)
    tone_wav(work / "said.wav", said_s)
    carrier = CARRIER.read_text().replace(SAMPLE_PCAP, f'play_pcap_audio="{work}/carrier.pcap"')
    (work / "carrier.xml").write_text(carrier)


def noise_pcap(path: Path, seconds: int) -> None:
    """G.711a RTP (20 ms frames of varying bytes) as a pcap SIPp plays to the worker."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(seconds * 50):
            rtp = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, i * 160, 0x2222)
            body = rtp + bytes((i * 7 + j * 13) & 0xFF for j in range(160))
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(body), 0) + body
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
            )  # fmt: skip
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            usec = i * 20_000
            out.write(struct.pack("<IIII", usec // 10**6, usec % 10**6, len(frame), len(frame)))
            out.write(frame)


def tone_wav(path: Path, seconds: int) -> None:
    """What each softphone says: a warbling tone, never silent, for `seconds`."""
    frames = bytearray()
    for n in range(seconds * 8000):
        frames += struct.pack("<h", int(6000 * (((n * (440 + n % 97)) // 8000) % 2 * 2 - 1)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(frames))


def baresip(
    work: Path, port: int, mediaenc: str, talk_s: int, audio: Path
) -> subprocess.Popen[str]:
    home = work / f"baresip-{time.monotonic_ns()}"
    home.mkdir()
    (home / "config").write_text(
        "sip_listen 127.0.0.1:0\n"
        "audio_player aubridge,none\n"
        f"audio_source aufile,{audio}\n"
        "audio_alert aubridge,none\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule srtp.so\n"
        "module_app account.so\nmodule_app menu.so\n"
    )
    enc = f";mediaenc={mediaenc}" if mediaenc else ""
    (home / "accounts").write_text(
        f"<sip:agent1@127.0.0.1:{port};transport=udp>;auth_pass={PASSWORD};regint=0{enc}\n"
    )
    return subprocess.Popen(
        ["baresip", "-f", str(home), "-e", f"d {NUMBER}", "-t", str(talk_s + 10)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def calls_failed(phones: list[subprocess.Popen[str]], name: str, mediaenc: str, talk_s: int) -> int:
    """How many of the softphones' calls failed, each printed with baresip's last words.

    A call that was not established, or not encrypted where `mediaenc` asked for SRTP,
    would measure another call than the mode's, so the round says so rather than hide it.
    """
    failed = 0
    for phone in phones:
        out, _ = phone.communicate(timeout=talk_s + 40)
        encrypted = not mediaenc or "SRTP is Enabled" in out
        if "Call established" not in out or not encrypted:
            failed += 1
            print(f"  {name}: a call failed:\n{out[-1500:]}", file=sys.stderr)
    return failed


@dataclass
class Mode:
    """One worker with its policy, its carrier, and what its rounds measured."""

    name: str
    policy: str
    mediaenc: str  # baresip's account parameter; "" offers plain RTP
    port: int = 0
    worker: Any = None
    carrier: subprocess.Popen[bytes] | None = None
    idle_rate: float = 0.0  # CPU seconds a second with no call
    per_round: list[float] = field(default_factory=list)  # ms CPU per call-second
    failed: int = 0

    def start(self, work: Path, calls: int) -> None:
        self.port, trunk_port = free_port(), free_port()
        config = B2buaConfig(
            host="127.0.0.1",
            port=self.port,
            trunk=f"127.0.0.1:{trunk_port}",
            caller_ids=["+861058000000"],
            recording_dir=work / "calls",
            secret=os.urandom(32),
            srtp=SrtpPolicy.parse(self.policy),
        )
        self.carrier = start_carrier(work, trunk_port, "-m", str(calls))
        self.worker = spawn_worker(config)
        wait_answering("127.0.0.1", self.port, self.worker)
        METER.watch(self.worker.pid)

    def measure_idle(self, seconds: float) -> None:
        before, t0 = METER.cpu_s(self.worker.pid), time.monotonic()
        time.sleep(seconds)
        self.idle_rate = (METER.cpu_s(self.worker.pid) - before) / (time.monotonic() - t0)

    def round(self, work: Path, calls: int, talk_s: int, *, count: bool = True) -> None:
        """`calls` calls at once, talking `talk_s` seconds; the worker's CPU for them.

        The first round is not counted (`count`): it starts the worker's merge
        thread and warms pjsua2's lazily made parts.
        """
        before, t0 = METER.cpu_s(self.worker.pid), time.monotonic()
        phones = [
            baresip(work, self.port, self.mediaenc, talk_s, work / "said.wav") for _ in range(calls)
        ]
        self.failed += calls_failed(phones, self.name, self.mediaenc, talk_s)
        time.sleep(1)  # the worker's BYE to the carrier, the recording's merge
        used = METER.cpu_s(self.worker.pid) - before - self.idle_rate * (time.monotonic() - t0)
        if count:
            self.per_round.append(1000 * used / (calls * talk_s))

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.join(15)
        if self.carrier is not None:
            try:
                self.carrier.wait(5)  # done once it has seen every call's BYE
            except subprocess.TimeoutExpired:
                self.carrier.kill()
                self.carrier.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2, help="calls at once (a worker: 2)")
    parser.add_argument("--talk", type=int, default=20, help="seconds each call talks")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("baresip") is None or shutil.which("sipp") is None:
        raise SystemExit("needs baresip and sipp (Debian: baresip, sip-tester)")
    METER.start()
    modes = [
        Mode("plain RTP, SRTP off", "off", ""),
        Mode("plain RTP, SRTP optional", "optional", ""),
        Mode("SRTP (SDES, AES_CM_128_HMAC_SHA1_80)", "optional", "srtp-mand"),
    ]
    loads = []
    with tempfile.TemporaryDirectory(prefix="srtp-cost-") as tmp:
        work = Path(tmp)
        prepare_media(work, carrier_s=args.talk + 10, said_s=args.talk)
        try:
            for mode in modes:
                mode.start(work, args.calls * (args.rounds + 1))
            time.sleep(1)
            for mode in modes:
                mode.round(work, args.calls, args.talk, count=False)
            for mode in modes:
                mode.measure_idle(5)
            # Interleaved, in a rotating order, so a busy moment on a shared machine
            # falls on every mode alike rather than on whichever ran then.
            for r in range(args.rounds):
                for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:
                    mode.round(work, args.calls, args.talk)
                    loads.append(os.getloadavg()[0])
        finally:
            for mode in modes:
                mode.stop()
    cores = len(os.sched_getaffinity(0))
    print(
        f"conditions: {cores} cores ({_cpu_model()}), "
        f"load average {min(loads):.1f}-{max(loads):.1f} during the calls; one dialer worker "
        f"per mode (pjsua2 {_pjsua_version()}, libsrtp with its bundled OpenSSL), "
        f"{args.calls} calls at once x {args.rounds} rounds, {args.talk} s each, modes "
        "interleaved; G.711a 8 kHz, 20 ms frames, both ways; baresip agents, SIPp carrier "
        "(plain RTP); both parties recorded; worker CPU from /proc/PID/task/*/schedstat, idle "
        "subtracted"
    )
    base = statistics.median(modes[0].per_round)
    for m in modes:
        mid = statistics.median(m.per_round)
        extra = (mid - base) / base * 100 if base > 0 else float("nan")
        print(
            f"{m.name:38s} {mid:5.2f} ms CPU per call-second, median of {len(m.per_round)} "
            f"rounds (range {min(m.per_round):.2f}-{max(m.per_round):.2f}); "
            f"{mid / 10:.2f}% of a core per call; {extra:+.0f}% vs SRTP "
            f"off; idle {100 * m.idle_rate:.1f}% of a core; {m.failed} failed"
        )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _pjsua_version() -> str:
    from importlib.metadata import version

    try:
        return version("pjsua2-python")
    except Exception:
        return "?"


if __name__ == "__main__":
    main()

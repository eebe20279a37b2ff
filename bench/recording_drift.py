"""Drift between the two channels of a long call's stereo recording, through the real B2BUA.

Usage: python bench/recording_drift.py [--minutes 30]

Issue 4, Must 1: agent left, debtor right, aligned timing, drift under 50 ms
over 30 minutes. A B2BUA (dialer/sip/b2bua.py, pjsua2, in its own process as
`dialguard up` runs it) bridges a SIPp agent to a SIPp carrier on 127.0.0.1.
Each SIPp plays G.711a RTP from a pcap built here (`play_pcap_audio`):
a 10-second loop that starts with a 60 ms chirp: rising on the agent's side, falling on the
debtor's, so every 10 s each party sends one mark, both paced by the same
host clock. After the hang-up the B2BUA merges its two recorders into the
stereo WAV (merge_stereo); this script finds every mark on each channel by
matched filtering (sample-accurate) and prints:

- the left-right offset of the marks at the start and at the end, and its
  largest change over the call: the drift (target: under 50 ms);
- each channel's mark spacing against the 10 s it was sent at, so a drift
  can be told apart from a sender or recorder that runs slow or fast.

The start offset itself is arbitrary (the two SIPps start their streams when
their own leg is answered); only its change over the call is drift.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.calls import CallRecord
from dialer.sip.b2bua import B2bua
from dialer.sip.config import B2buaConfig
from dialer.sip.digest import Algorithm, Credential
from dialer.sip.probe import wait_answering

ROOT = Path(__file__).resolve().parent.parent
SIPP = ROOT / "tests" / "data" / "sipp"
PCAP_EXEC = 'play_pcap_audio="/usr/share/sip-tester/g711a.pcap"'
RATE = 8000
PERIOD_S = 10.0  # one mark per party every PERIOD_S seconds
CHIRP_S = 0.06
PACKET = 160  # samples (20 ms) per RTP packet
NUMBER = "13800138000"
REALM = "dialguard"
TARGET_MS = 50.0


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chirp(rising: bool) -> np.ndarray:
    """A 60 ms linear chirp: a sharp, unambiguous peak under a matched filter."""
    t = np.arange(int(CHIRP_S * RATE)) / RATE
    f0, f1 = (500.0, 3000.0) if rising else (3000.0, 500.0)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * CHIRP_S))
    return np.sin(phase) * np.hanning(len(t))


def alaw_loop(rising: bool, work: Path) -> bytes:
    """PERIOD_S seconds of G.711a: the mark at 0, then quiet noise (a line is never silent)."""
    rng = np.random.default_rng(1 if rising else 2)
    audio = rng.normal(0, 0.003, int(PERIOD_S * RATE))
    audio[: int(CHIRP_S * RATE)] += 0.5 * chirp(rising)
    pcm = work / f"loop-{int(rising)}.wav"
    with wave.open(str(pcm), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    encoded = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(pcm), "-f", "alaw", "-"],
        check=True,
        capture_output=True,
    ).stdout
    pcm.unlink()
    return encoded


def rtp_pcap(path: Path, payload: bytes, seconds: float, ssrc: int) -> Path:
    """A pcap of G.711a RTP, 20 ms a packet, `payload` looped for `seconds`.

    SIPp's play_pcap_audio sends each packet when the clock reaches the
    stream's start plus the packet's pcap time, so the sender cannot drift.
    """
    samples = PACKET * round(seconds * RATE / PACKET)
    loops = -(-samples // len(payload))
    audio = (payload * loops)[:samples]
    eth = b"\x00" * 12 + b"\x08\x00"
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(samples // PACKET):
            rtp = struct.pack("!BBHII", 0x80, 8, i & 0xFFFF, (i * PACKET) & 0xFFFFFFFF, ssrc)
            body = rtp + audio[i * PACKET : (i + 1) * PACKET]
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(body), 0) + body
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0x4000,
                64,
                17,
                0,
                bytes([10, 0, 0, 1]),
                bytes([10, 0, 0, 2]),
            )
            frame = eth + ip + udp
            usec = i * 20_000
            out.write(
                struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
            )
            out.write(frame)
    return path


def scenario(src: str, pcap: Path, out: Path) -> Path:
    """A tests/data/sipp scenario with its sample pcap replaced by `pcap`."""
    text = (SIPP / src).read_text()
    if PCAP_EXEC not in text:
        raise SystemExit(f"{src} no longer plays {PCAP_EXEC}; update this benchmark")
    out.write_text(text.replace(PCAP_EXEC, f'play_pcap_audio="{pcap}"', 1))
    return out


def _credentials(username: str) -> Credential | None:
    if username == "agent1":
        return Credential.from_password("agent1", REALM, "secret", (Algorithm.MD5,))
    return None


def _decide(e164: str, *context: object) -> tuple[bool, str, str]:
    return True, "allowed", "Allowed"


def _serve(config: B2buaConfig, records: Any, stop: Any) -> None:
    b2b = B2bua(config, _credentials, _decide, records.put)
    b2b.run(stop)


def _wait_bound(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the carrier's SIPp exited at start")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)
    raise SystemExit(f"SIPp did not bind 127.0.0.1:{port}")


def sipp(scenario_file: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["sipp", "-sf", str(scenario_file), "-m", "1", "-nostdin", "-timeout_error", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def record_call(work: Path, minutes: float) -> CallRecord:
    """One call of `minutes` through a B2BUA process; returns its CallRecord once merged."""
    # The streams outlast the call: the agent's BYE ends it, not the end of a pcap.
    stream_s = minutes * 60 + 30
    agent_pcap = rtp_pcap(work / "agent.pcap", alaw_loop(True, work), stream_s, 0x1111)
    debtor_pcap = rtp_pcap(work / "debtor.pcap", alaw_loop(False, work), stream_s, 0x2222)
    agent_sf = scenario("b2b_agent_talk.xml", agent_pcap, work / "a.xml")
    carrier_sf = scenario("b2b_carrier_answer.xml", debtor_pcap, work / "c.xml")
    talk_ms = int(minutes * 60_000)
    limit = f"{int(minutes * 60 + 120)}s"
    (work / "recordings").mkdir()
    ctx = multiprocessing.get_context("spawn")
    port, trunk_port = free_port(), free_port()
    config = B2buaConfig(
        host="127.0.0.1",
        port=port,
        trunk=f"127.0.0.1:{trunk_port}",
        caller_ids=["+861058000000"],
        recording_dir=work / "recordings",
        secret=os.urandom(32),
        region="CN",
    )
    records = ctx.Queue()
    stop = ctx.Event()
    server = ctx.Process(target=_serve, args=(config, records, stop))
    server.start()
    try:
        wait_answering("127.0.0.1", port, server)
        carrier = sipp(
            carrier_sf,
            "-i",
            "127.0.0.1",
            "-p",
            str(trunk_port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port()),
            "-timeout",
            limit,
            log=work / "carrier.log",
        )
        _wait_bound(trunk_port, carrier)
        agent = sipp(
            agent_sf,
            f"127.0.0.1:{port}",
            "-s",
            NUMBER,
            "-au",
            "agent1",
            "-ap",
            "secret",
            "-auth_uri",
            f"{NUMBER}@127.0.0.1:{port}",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port()),
            "-d",
            str(talk_ms),
            "-timeout",
            limit,
            log=work / "agent.log",
        )
        print(f"call running for {minutes:g} min ...", flush=True)
        if agent.wait() != 0 or carrier.wait(timeout=60) != 0:
            raise SystemExit(f"a SIPp failed; see {work / 'agent.log'} and {work / 'carrier.log'}")
        while True:
            try:
                record: CallRecord = records.get(timeout=120)
            except queue.Empty:
                raise SystemExit("the B2BUA reported no finished call") from None
            if record.answered and record.recording is not None:
                return record
    finally:
        stop.set()
        server.join(15)
        if server.is_alive():
            server.kill()


def read_stereo(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth()) != (2, 2):
            raise SystemExit(f"{path} is not 16-bit stereo")
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return pcm.astype(np.float64) / 32768.0, rate


def find_marks(channel: np.ndarray, rate: int, template: np.ndarray) -> list[float]:
    """Every mark's start (seconds), sample-accurate: matched filter, one peak per period.

    The first mark is the strongest correlation peak in the first period;
    each later one is searched for within half a second of where the
    previous one predicts it, so a stray peak elsewhere cannot be taken.
    """
    tmpl = template[::-1]
    n = len(tmpl)

    def correlate(lo: int, hi: int) -> np.ndarray:
        seg = channel[max(lo, 0) : min(hi + n, len(channel))]
        if len(seg) < n:
            return np.zeros(0)
        size = 1 << (len(seg) + n).bit_length()
        out = np.fft.irfft(np.fft.rfft(seg, size) * np.fft.rfft(tmpl, size), size)
        return np.abs(out[n - 1 : len(seg)])

    period = int(PERIOD_S * rate)
    first = correlate(0, period + n)
    if not len(first):
        return []
    peaks = [int(np.argmax(first))]
    floor = 0.3 * float(first[peaks[0]])
    window = rate // 2
    skipped = 0
    while True:
        guess = peaks[-1] + period * (1 + skipped)
        lo = guess - window
        if lo + 2 * window + n > len(channel):
            break
        scores = correlate(lo, guess + window)
        best = int(np.argmax(scores))
        if scores[best] < floor:
            skipped += 1  # a mark lost (or muted): look for the next one
            continue
        peaks.append(max(lo, 0) + best)
        skipped = 0
    return [p / rate for p in peaks]


def analyse(path: Path) -> dict[str, Any]:
    pcm, rate = read_stereo(path)
    tmpl_rate = np.interp(
        np.arange(int(CHIRP_S * rate)) / rate, np.arange(int(CHIRP_S * RATE)) / RATE, chirp(True)
    )
    left = find_marks(pcm[:, 0], rate, tmpl_rate)
    right = find_marks(pcm[:, 1], rate, tmpl_rate[::-1])  # the falling chirp
    # Pair each agent mark with the debtor mark nearest to it: the parties' streams start
    # whenever their leg is answered, so the first marks need not be in the same period.
    rarr = np.array(right)
    paired = [(t, float(rarr[np.argmin(np.abs(rarr - t))])) for t in left if len(rarr)]
    paired = [(t, r) for t, r in paired if abs(r - t) <= PERIOD_S / 2]
    pairs = len(paired)
    if pairs < 2:
        raise SystemExit(f"too few marks found (left {len(left)}, right {len(right)})")
    offsets = np.array([r - t for t, r in paired])
    spacing = {name: np.diff(np.array(marks)) for name, marks in (("left", left), ("right", right))}
    return {
        "rate": rate,
        "duration_s": len(pcm) / rate,
        "marks": (len(left), len(right)),
        "pairs": pairs,
        "offset_start_ms": offsets[0] * 1000,
        "offset_end_ms": offsets[-1] * 1000,
        "drift_ms": (offsets[-1] - offsets[0]) * 1000,
        "max_drift_ms": float(np.max(np.abs(offsets - offsets[0]))) * 1000,
        "span_s": {
            name: marks[-1] - marks[0] for name, marks in (("left", left), ("right", right))
        },
        "spacing_ms": {
            name: (float(np.mean(d)) * 1000, float(np.min(d)) * 1000, float(np.max(d)) * 1000)
            for name, d in spacing.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the call")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("sipp") is None or shutil.which("ffmpeg") is None:
        raise SystemExit("needs sipp (sip-tester) and ffmpeg: make apt")
    work = Path(tempfile.mkdtemp(prefix="dialguard-drift-"))
    started = time.monotonic()
    try:
        record = record_call(work, args.minutes)
        assert record.recording is not None
        result = analyse(record.recording)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"conditions: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}; "
        f"B2BUA (pjsua2) in its own process, SIPp agent and carrier on 127.0.0.1, G.711a "
        f"pcap RTP both ways, one chirp per party every {PERIOD_S:g} s; "
        f"wall time {time.monotonic() - started:.0f} s"
    )
    print(
        f"call: {record.duration_s:.1f} s talk; recording {result['duration_s']:.1f} s stereo at "
        f"{result['rate']} Hz; marks found left {result['marks'][0]}, right {result['marks'][1]}"
    )
    for name, party in (("left", "agent"), ("right", "debtor")):
        mean, low, high = result["spacing_ms"][name]
        print(
            f"{name} ({party}) mark spacing: mean {mean:.3f} ms, min {low:.3f}, "
            f"max {high:.3f} (sent every {PERIOD_S * 1000:.0f} ms); first to last "
            f"{result['span_s'][name]:.3f} s"
        )
    print(
        f"left-right offset: start {result['offset_start_ms']:+.2f} ms, end "
        f"{result['offset_end_ms']:+.2f} ms over {result['pairs']} mark pairs"
    )
    verdict = "PASS" if result["max_drift_ms"] < TARGET_MS else "FAIL"
    print(
        f"drift: {result['drift_ms']:+.2f} ms start to end, largest {result['max_drift_ms']:.2f} "
        f"ms (target under {TARGET_MS:.0f} ms over 30 min): {verdict}"
    )


if __name__ == "__main__":
    main()

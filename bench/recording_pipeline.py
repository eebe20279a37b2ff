"""The recording pipeline's figures: throughput, hang-up to two verified copies, size, retrieval.

Usage: python bench/recording_pipeline.py [--calls 20] [--minutes 3] [--long 10]

On this machine with the embedded SeaweedFS and SQLite, each of `--calls`
stereo calls of `--minutes` minutes (8 kHz speech on both channels, as a
phone line carries it) goes through what a hang-up triggers: encode to
Ogg/Opus, encrypt (AES-256-GCM, per-call key), spool, upload to the primary
and replica buckets with object lock and verify both. Prints recorded minutes
processed per CPU second, hang-up to both copies verified (p50/p95), stored
bytes per call-minute, and the first-byte latency of reading a `--long`-minute
recording back (the API's Range path: fetch and decrypt the first chunk).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.migrate import upgrade
from recording.db.engine import make_engine, session_factory
from recording.embedded_s3 import EmbeddedS3
from recording.keys import FileKeyRing
from recording.storage import ensure_bucket, make_client
from recording.store import CallInfo, Copy, read_audio_range, spool_call, upload_pending

RATE = 8000
LINES = [
    "Good morning, this is Anna from the collections department calling about your card.",
    "I understand. I can pay part of it on Friday and the rest next month.",
    "That works. I will note a payment of two hundred on Friday the twelfth.",
]


def speech(text: str, folder: Path) -> np.ndarray:
    raw = folder / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    out = folder / "s8k.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ar",
            str(RATE),
            "-ac",
            "1",
            str(out),
        ],
        check=True,
    )
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def call_wav(path: Path, minutes: float, folder: Path) -> Path:
    """A conversation: the parties take turns, as in a call (one speaks, the other listens)."""
    total = int(minutes * 60 * RATE)
    left, right = np.zeros(total, np.int16), np.zeros(total, np.int16)
    clips = [speech(line, folder) for line in LINES]
    at, turn = 0, 0
    while at < total:
        clip = clips[turn % len(clips)]
        channel = left if turn % 2 == 0 else right
        end = min(total, at + len(clip))
        channel[at:end] = clip[: end - at]
        at = end + RATE // 2
        turn += 1
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.stack([left, right], axis=1).tobytes())
    return path


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--long", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dialguard-rec-bench-"))
    with EmbeddedS3(work / "s3") as s3:
        copies = []
        for name, bucket in (("primary", "bench-primary"), ("replica", "bench-replica")):
            target = s3.target(bucket)
            client = make_client(target)
            ensure_bucket(client, target, 730)
            copies.append(Copy(name, target, client))
        pair = (copies[0], copies[1])
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        keys = FileKeyRing(work / "kek.json")
        spool = work / "spool"
        call = call_wav(work / "call.wav", args.minutes, work)

        latencies: list[float] = []
        sizes: list[int] = []
        cpu0 = time.process_time()
        for i in range(args.calls):
            hangup = time.perf_counter()
            now = datetime.now(UTC)
            row = spool_call(
                sessions, spool, keys, call, CallInfo(f"b{i}", "agent7", now), 730, now
            )
            report = upload_pending(sessions, spool, pair, now)
            assert report.stored == [row.id], report
            latencies.append(time.perf_counter() - hangup)
            sizes.append(row.ciphertext_size)
        cpu = time.process_time() - cpu0
        # ffmpeg runs as a child process: count its CPU time too.
        children = os.times()
        cpu += children.children_user + children.children_system

        long_call = call_wav(work / "long.wav", args.long, work)
        now = datetime.now(UTC)
        long_row = spool_call(
            sessions, spool, keys, long_call, CallInfo("long", "agent7", now), 730, now
        )
        upload_pending(sessions, spool, pair, now)
        first_byte = []
        for _ in range(30):
            started = time.perf_counter()
            read_audio_range(sessions, spool, pair, keys, long_row.id, 0, 0)
            first_byte.append((time.perf_counter() - started) * 1000)

    minutes = args.calls * args.minutes
    per_minute = statistics.mean(sizes) / args.minutes
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}; SQLite, embedded SeaweedFS on loopback"
    )
    print(f"calls: {args.calls} x {args.minutes:g} min stereo 8 kHz speech (turn-taking)")
    print(
        f"throughput: {minutes / cpu:.2f} recorded minutes per CPU second: encode, "
        f"encrypt, 2 uploads, verify ({cpu:.1f} CPU s for {minutes:g} min; SeaweedFS's own "
        "CPU not counted)"
    )
    print(
        f"hang-up to both copies verified: p50 {pct(latencies, 50):.2f} s, "
        f"p95 {pct(latencies, 95):.2f} s"
    )
    print(f"stored: {per_minute / 1000:.1f} KB per call-minute (raw G.711 stereo: 960 KB)")
    print(
        f"first byte of a {args.long:g}-minute recording: p50 {pct(first_byte, 50):.1f} ms, "
        f"p95 {pct(first_byte, 95):.1f} ms"
    )


if __name__ == "__main__":
    main()

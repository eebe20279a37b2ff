"""Transcription per host: N worker processes of T threads, plain and Dialguard alike.

Usage: python bench/transcribe_workers.py [--layouts 1x2,2x1] [--calls 6] [--seed 3]
       [--cache DIR]

The calls of `bench/transcribe_throughput.py` (same seed, same cache) are shared
out round-robin among N processes, each loading `base` (CPU int8) with T
CTranslate2 threads and warming up on its first call; once all are warm they
start together, and the figure is the audio of all calls over the wall time
until the last process ends. plain: `WhisperModel.transcribe` on the mono mix
with VAD, and dialguard: `transcribe_recording` with the worker's engine, both
as transcribe_throughput runs them (`engine_for`, settings' defaults), language detected.
Why: the site's cost is transcription hours per core, and workers that each
take every core fight over them (`DIALGUARD_WHISPER_THREADS`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transcribe_throughput import build_calls, duration_of

CHILD = """
import json, os, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[6], sys.argv[7]]
from transcribe_throughput import run_dialguard, run_plain
from transcribe.engine import engine_for, load_model
from transcribe.model_store import resolve_model
kind, threads, calls = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
ready, go = sys.argv[4], sys.argv[5]
model = load_model(resolve_model("base", Path(sys.argv[8])), "cpu", cpu_threads=threads)
engine = engine_for(model)
def run(stereo, mono):
    if kind == "plain":
        run_plain(model, Path(mono), True)
    else:
        run_dialguard(engine, Path(stereo), None)
run(*calls[0])
Path(ready).touch()
while not os.path.exists(go):
    time.sleep(0.01)
for stereo, mono in calls:
    run(stereo, mono)
print(time.time())
"""


def measure(kind: str, workers: int, threads: int, calls: list, models: Path) -> float:
    """Wall seconds from the common start until the last worker is done."""
    bench = str(Path(__file__).resolve().parent)
    root = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = []
        for i in range(workers):
            share = json.dumps([(str(s), str(m)) for s, m, _ in calls[i::workers]])
            ready = Path(tmp) / f"ready-{i}"
            args = [kind, str(threads), share, str(ready), str(go), bench, root, str(models)]
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append((proc, ready))
        while not all(ready.exists() or proc.poll() is not None for proc, ready in procs):
            time.sleep(0.05)
        start = time.time()
        go.touch()
        ends = []
        for proc, _ in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"a {kind} worker failed (exit {proc.returncode})")
            ends.append(float(out.split()[-1]))
        return max(ends) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--layouts", default="1x2,2x1", help="WORKERSxTHREADS, comma-separated")
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "dialguard-bench-throughput"
    )
    args = parser.parse_args()
    from transcribe.model_store import resolve_model

    args.cache.mkdir(parents=True, exist_ok=True)
    calls = build_calls(args.cache, args.calls, args.seed)
    resolve_model("base", args.cache / "models")  # fetched once, before any timing
    audio = sum(duration_of(stereo) for stereo, _, _ in calls)
    print(
        f"model base (CPU int8), {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {len(calls)} stereo "
        f"calls, {audio:.0f} s in all; dialguard: the worker's engine at the settings' defaults"
    )
    print(f"\n{'layout':>16} {'plain':>12} {'dialguard':>12} {'dialguard / plain':>18}")
    for layout in args.layouts.split(","):
        workers, threads = (int(x) for x in layout.split("x"))
        plain = measure("plain", workers, threads, calls, args.cache / "models")
        ours = measure("dialguard", workers, threads, calls, args.cache / "models")
        print(
            f"{f'{workers} x {threads} threads':>16} {audio / plain:11.1f}x {audio / ours:11.1f}x "
            f"{plain / ours:17.2f}x",
            flush=True,
        )
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

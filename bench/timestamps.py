"""Timestamp error of transcripts against calls whose true onsets are known.

Usage: python bench/timestamps.py [--model base] [--threads 0] [--random 5] [--seed 15]
       [--batch 0] [--no-baseline]

Calls are spoken by espeak-ng (tests.audio.timed_call): the three test calls
(tests.audio.TIMED_CALLS) and `--random` more, whose turns, speakers and
silences (0.5 s to 12 s) are drawn from a seed. Each phrase's true onset is
its first voiced 10 ms frame. For every phrase the error is where its first
word is placed minus where it is spoken; for every turn, where its first
segment starts. Printed: p50, p95 and max of the absolute errors, the share
within 0.3 s (issue 15), and the calls whose merged transcript reads out of
spoken order. The baseline is faster-whisper's own VAD and time mapping on
each channel (what Dialguard did before), from the same run and model.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.audio import TIMED_CALLS, Turn, timed_call
from transcribe.timing import TURN_GAP

LINES = [
    "Good morning, this is Anna calling from Northwind Collections.",
    "Am I speaking with Mister David Chen?",
    "Yes, this is David.",
    "I am calling about your credit card account, which is overdue.",
    "The minimum payment was due on the fifth of this month.",
    "I lost my job last month. | I cannot pay right now.",
    "Could you tell me when you will be able to make a payment?",
    "I can pay two hundred dollars on Friday.",
    "We can set up a payment plan that fits your budget.",
    "Okay, go ahead.",
    "Please note that this call is recorded for quality purposes.",
    "That is fine with me.",
]
GAPS = [0.5, 0.5, 0.7, 1.0, 1.6, 3.0, 5.5, 7.0, 12.0]


def random_call(rng: random.Random) -> list[tuple[str, float, str]]:
    """Eight to twelve turns, mostly alternating, sometimes the same party twice."""
    turns = []
    speaker = "agent"
    for i in range(rng.randint(8, 12)):
        turns.append(
            (speaker, rng.uniform(0.5, 2.5) if i == 0 else rng.choice(GAPS), rng.choice(LINES))
        )
        if rng.random() < 0.8:
            speaker = "debtor" if speaker == "agent" else "agent"
    return turns


def baseline(model: Any, path: Path) -> list[tuple[float, str, list[float]]]:
    """faster-whisper's own VAD on each channel, segments sorted by start (the old merge)."""
    from transcribe.audio import load_channels

    found = []
    for speaker, audio in load_channels(path):
        segments, _ = model.transcribe(
            audio,
            language="en",
            vad_filter=True,
            word_timestamps=True,
            condition_on_previous_text=False,
            beam_size=5,
        )
        for s in segments:
            found.append((s.start, speaker.value, [w.start for w in s.words or ()]))
    found.sort(key=lambda f: (f[0], f[1]))
    return found


def ours(model: Any, path: Path) -> list[tuple[float, str, list[float]]]:
    from transcribe.transcriber import transcribe_recording

    result = transcribe_recording(model, "bench", path, language="en")
    return [(s.start, s.speaker.value, [w.start for w in s.words]) for s in result.segments]


def errors(
    truth: list[Turn], found: list[tuple[float, str, list[float]]]
) -> tuple[list[float], list[float], int, bool]:
    """Word-onset errors per phrase, segment-start errors per turn, phrases not heard, order."""
    words = [(start, who) for _, who, starts in found for start in starts]
    word_errors: list[float] = []
    segment_errors: list[float] = []
    missed = 0
    said: dict[str, float] = {}  # where each party's last phrase ended
    for turn in truth:
        # A time belongs to the phrase it falls in, or to the phrase it comes before,
        # back to the same party's previous phrase.
        before = said.get(turn.speaker, -99.0)
        follows = turn.onset - before < TURN_GAP
        for phrase in turn.phrases:
            low = max(phrase.onset - 3.0, said.get(turn.speaker, -99.0))
            heard = [t for t, who in words if who == turn.speaker and low < t <= phrase.end]
            if heard:
                word_errors.append(min(heard) - phrase.onset)
            else:
                missed += 1
            said[turn.speaker] = phrase.end
        if follows:  # the party went on after a short pause: one segment may hold both
            continue
        low = max(turn.onset - 3.0, before)
        starts = [s for s, who, _ in found if who == turn.speaker and low < s <= turn.end]
        if starts:
            segment_errors.append(min(starts) - turn.onset)
    owners = []
    for start, who, _ in found:
        nearest = min(
            (i for i, t in enumerate(truth) if t.speaker == who),
            key=lambda i: (
                0.0
                if truth[i].onset <= start <= truth[i].end
                else min(abs(start - truth[i].onset), abs(start - truth[i].end))
            ),
        )
        owners.append(nearest)
    return word_errors, segment_errors, missed, owners == sorted(owners)


def summary(label: str, values: list[float]) -> str:
    a = np.abs(np.array(values))
    return (
        f"{label}: n={len(a)} p50 {np.percentile(a, 50):.2f} s, p95 {np.percentile(a, 95):.2f} s,"
        f" max {a.max():.2f} s, within 0.3 s {np.mean(a <= 0.3):.0%}"
        f" (signed mean {np.mean(values):+.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument(
        "--threads", type=int, default=0, help="CTranslate2 threads (0: its default)"
    )
    parser.add_argument("--random", type=int, default=5, help="random calls beside the test calls")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--batch", type=int, default=0, help="batched pipeline size (0: sequential)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    from transcribe.engine import BatchedModel, load_model
    from transcribe.model_store import resolve_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = resolve_model(
            args.model, Path(os.environ.get("DIALGUARD_BENCH_MODELS", folder))
        )
        model = load_model(model_dir, "cpu", cpu_threads=args.threads)
        engine = BatchedModel(model, args.batch) if args.batch else model
        mode = f"batched {args.batch}" if args.batch else "sequential"
        rng = random.Random(args.seed)
        scripts = dict(TIMED_CALLS) | {f"random-{i}": random_call(rng) for i in range(args.random)}
        print(
            f"model {args.model}, {model.model.device} {model.model.compute_type}, "
            f"threads {args.threads or 'default'}, {mode}, "
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
            f"{len(scripts)} calls, espeak-ng 8 kHz stereo"
        )
        runs: dict[str, Callable[[Any, Path], list[tuple[float, str, list[float]]]]] = {
            "dialguard": ours
        }
        if not args.no_baseline:
            runs["faster-whisper VAD (before)"] = baseline
        totals: dict[str, tuple[list[float], list[float], int, list[str], float]] = {
            k: ([], [], 0, [], 0.0) for k in runs
        }
        audio_seconds = 0.0
        for name, script in scripts.items():
            (folder / name).mkdir()
            path, truth = timed_call(folder / name / "call.wav", script)
            audio_seconds += truth[-1].end
            for label, run in runs.items():
                began = time.perf_counter()
                found = run(engine, path)
                took = time.perf_counter() - began
                w, s, missed, ordered = errors(truth, found)
                words, segs, miss, bad, seconds = totals[label]
                totals[label] = (
                    words + w,
                    segs + s,
                    miss + missed,
                    bad + ([] if ordered else [name]),
                    seconds + took,
                )
        for label, (words, segs, miss, bad, seconds) in totals.items():
            print(f"\n{label} ({seconds:.0f} s for {audio_seconds:.0f} s of calls)")
            print("  " + summary("first word of each phrase", words))
            print("  " + summary("first segment of each turn", segs))
            print(f"  phrases not heard: {miss}; calls out of spoken order: {len(bad)} {bad}")
        print(f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

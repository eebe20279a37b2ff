"""Transcription throughput: Dialguard against plain faster-whisper, from one run.

Usage: python bench/transcribe_throughput.py [--model base] [--threads 2] [--calls 6]
       [--seed 3] [--rounds 1] [--language auto|en] [--plain-vad on|off]
       [--cache DIR]

Six (`--calls`) stereo collection calls are spoken by espeak-ng at 8 kHz
(tests.audio.timed_call: agent left, debtor right, known onsets), with
realistic turn-taking: mostly alternating turns, replies 0.3 s to 1.5 s after
the other party, sometimes the same party twice, a few holds of 4 s to 9 s.
They are cached under `--cache` (a temp directory by default), keyed by the
scripts, so reruns reuse them.

Measured in one process, with one `WhisperModel` (same weights, compute type
and `--threads`):

- **plain**: `WhisperModel.transcribe()` on the mono mix (left + right,
  8 kHz WAV), as a user calls it: every option at its default (beam 5,
  temperature fallback, conditioning on previous text, language detected,
  no word timestamps) except `vad_filter`, which plain users turn on for
  calls full of silence (`--plain-vad off` leaves it at its default, off);
- **dialguard**: `transcribe_recording` on the stereo file, with the engine
  the transcription worker loads (`transcribe.engine.load_engine`, the
  settings' defaults).

Each call is transcribed by both, one after the other (the order alternating
per call, so the machine's other load falls on both alike); time is wall
time around the call, segments consumed. Printed: x real time (audio seconds
per second) and RTF of each, the ratio dialguard / plain, the process CPU
time of each, and word error rates.

WER: lowercase words, punctuation dropped, numbers spoken as words ("$200"
-> "two hundred dollars") on both sides; Levenshtein distance over words
divided by the reference's word count, summed over calls. Plain's reference
is every turn in spoken order (it cannot tell speakers apart); Dialguard's
per speaker is that speaker's turns in order against its segments of that
speaker, and also both merged, against the same reference as plain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import wave
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.audio import Phrase, Turn, timed_call, write_wav

AGENT_LINES = [
    "Good morning, this is Anna calling from Northwind Collections.",
    "Am I speaking with Mister David Chen?",
    "I am calling about your credit card account, which is thirty days overdue.",
    "The minimum payment of one hundred and twenty dollars was due on the fifth.",
    "Could you tell me when you will be able to make a payment?",
    "We can set up a payment plan that fits your budget.",
    "Please note that this call is recorded for quality purposes.",
    "I understand. | Let me check what options we have for you.",
    "Can you confirm the last four digits of your card?",
    "If we do not receive a payment, late fees will be added to the balance.",
    "You can pay online, by bank transfer, or at any branch.",
    "Thank you. | I have noted a promise to pay on Friday.",
    "Is there a better number to reach you in the evening?",
    "I will send you a letter with the payment details.",
]
DEBTOR_LINES = [
    "Yes, this is David.",
    "Who is calling, please?",
    "I lost my job last month. | I cannot pay right now.",
    "I can pay two hundred dollars on Friday.",
    "I already paid that last week by bank transfer.",
    "Okay, go ahead.",
    "How much would I have to pay each month?",
    "That is fine with me.",
    "Can you call me back tomorrow afternoon?",
    "I do not have the card with me right now.",
    "Please stop calling me at work.",
    "All right, I will do that.",
]
REPLY_GAPS = [0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5]
HOLD_GAPS = [4.0, 6.0, 9.0]


def collection_call(rng: random.Random) -> list[tuple[str, float, str]]:
    """Fourteen to twenty turns of an agent and a debtor, most replies within 1.5 s."""
    turns: list[tuple[str, float, str]] = []
    speaker = "agent"
    for i in range(rng.randint(14, 20)):
        gap = rng.uniform(0.5, 2.0) if i == 0 else rng.choice(REPLY_GAPS)
        if i and rng.random() < 0.12:
            gap = rng.choice(HOLD_GAPS)
        lines = AGENT_LINES if speaker == "agent" else DEBTOR_LINES
        turns.append((speaker, gap, rng.choice(lines)))
        if rng.random() < 0.85:
            speaker = "debtor" if speaker == "agent" else "agent"
    return turns


_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
    *("seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spoken(n: int) -> str:
    """A whole number as English words (below a million), as espeak-ng reads it."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" and {spoken(rest)}" if rest else "")
    rest = n % 1000
    return f"{spoken(n // 1000)} thousand" + (f" {spoken(rest)}" if rest else "")


def words(text: str) -> list[str]:
    text = text.lower().replace(",", "")
    text = re.sub(r"\$(\d+)", r"\1 dollars", text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)  # "5th" -> "5" (script says "fifth")
    text = re.sub(
        r"\d+", lambda m: spoken(int(m.group())) if len(m.group()) < 7 else m.group(), text
    )
    text = text.replace(" and ", " ").replace("-", " ")
    return re.sub(r"[^a-z0-9' ]", " ", text).split()


def edits(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hypothesis)]


def reference(truth: list[Turn], speaker: str | None = None) -> list[str]:
    ordered = sorted(truth, key=lambda t: t.onset)
    return [w for t in ordered if speaker in (None, t.speaker) for w in words(t.text)]


def _turn(data: dict[str, Any]) -> Turn:
    return Turn(data["speaker"], tuple(Phrase(**p) for p in data["phrases"]))


def build_calls(cache: Path, count: int, seed: int) -> list[tuple[Path, Path, list[Turn]]]:
    """(stereo WAV, mono mix WAV, truth) per call, generated once per script set."""
    rng = random.Random(seed)
    scripts = [collection_call(rng) for _ in range(count)]
    key = hashlib.sha256(json.dumps(scripts).encode()).hexdigest()[:12]
    folder = cache / f"calls-{key}"
    calls = []
    for i, script in enumerate(scripts):
        stereo = folder / f"call-{i}" / "call.wav"
        mono = stereo.with_name("mix.wav")
        truth_file = stereo.with_name("truth.json")
        if truth_file.is_file():
            truth = [_turn(t) for t in json.loads(truth_file.read_text())]
        else:
            stereo.parent.mkdir(parents=True, exist_ok=True)
            _, truth = timed_call(stereo, script)
            with wave.open(str(stereo)) as w:
                frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
                rate = w.getframerate()
            pair = frames.reshape(-1, 2).astype(np.int32)
            write_wav(mono, [(pair.sum(axis=1) // 2).astype(np.int16)], rate)
            truth_file.write_text(json.dumps([asdict(t) for t in truth]))
        calls.append((stereo, mono, truth))
    return calls


def duration_of(path: Path) -> float:
    with wave.open(str(path)) as w:
        return float(w.getnframes() / w.getframerate())


def run_plain(model: Any, mono: Path, vad: bool) -> str:
    segments, _ = model.transcribe(str(mono), vad_filter=vad)
    return " ".join(s.text for s in segments)


def run_dialguard(engine: Any, stereo: Path, language: str | None) -> dict[str, str]:
    from transcribe.transcriber import transcribe_recording

    result = transcribe_recording(engine, "base", stereo, language)
    by_speaker: dict[str, list[str]] = {"agent": [], "debtor": [], "both": []}
    for s in result.segments:
        by_speaker[s.speaker.value].append(s.text)
        by_speaker["both"].append(s.text)
    return {k: " ".join(v) for k, v in by_speaker.items()}


def describe(engine: Any) -> str:
    from transcribe.engine import DEFAULT_BEAM, BatchedModel

    if isinstance(engine, BatchedModel):
        return f"batch {engine.batch_size}, beam {engine.beam_size}"
    return f"sequential, beam {DEFAULT_BEAM}"


def main() -> None:  # noqa: PLR0915  (one linear report)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the calls")
    parser.add_argument("--language", default="auto", help="auto (detect) or a code (en)")
    parser.add_argument("--plain-vad", choices=["on", "off"], default="on")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "dialguard-bench-throughput"
    )
    args = parser.parse_args()

    from api.settings import Settings
    from transcribe.engine import engine_for, load_model
    from transcribe.model_store import resolve_model

    settings = Settings()
    args.cache.mkdir(parents=True, exist_ok=True)
    calls = build_calls(args.cache, args.calls, args.seed)
    model_dir = resolve_model(args.model, args.cache / "models")
    model = load_model(model_dir, "cpu", cpu_threads=args.threads)
    engine = engine_for(model, settings.whisper_batch, settings.whisper_beam)
    language = None if args.language == "auto" else args.language
    audio = sum(duration_of(stereo) for stereo, _, _ in calls) * args.rounds
    print(
        f"model {args.model} ({model.model.device} {model.model.compute_type}), "
        f"{args.threads} threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {len(calls)} stereo calls "
        f"espeak-ng 8 kHz, {audio / args.rounds:.0f} s in all, {args.rounds} round(s); "
        f"plain: defaults, vad_filter={args.plain_vad == 'on'}, mono mix; dialguard: "
        f"{type(engine).__name__} ({describe(engine)}), language {args.language}"
    )
    # One warm-up of each, outside the figures: first calls pay for lazy loading.
    stereo0, mono0, _ = calls[0]
    run_plain(model, mono0, args.plain_vad == "on")
    run_dialguard(engine, stereo0, language)

    wall = {"plain": 0.0, "dialguard": 0.0}
    cpu = {"plain": 0.0, "dialguard": 0.0}
    errors = {"plain": 0, "both": 0, "agent": 0, "debtor": 0}
    counts = {"plain": 0, "both": 0, "agent": 0, "debtor": 0}
    for round_ in range(args.rounds):
        for i, (stereo, mono, truth) in enumerate(calls):
            order = ["plain", "dialguard"] if (i + round_) % 2 == 0 else ["dialguard", "plain"]
            for who in order:
                began, began_cpu = time.perf_counter(), time.process_time()
                if who == "plain":
                    text = run_plain(model, mono, args.plain_vad == "on")
                else:
                    texts = run_dialguard(engine, stereo, language)
                wall[who] += time.perf_counter() - began
                cpu[who] += time.process_time() - began_cpu
            if round_:
                continue
            full = reference(truth)
            errors["plain"] += edits(full, words(text))
            counts["plain"] += len(full)
            errors["both"] += edits(full, words(texts["both"]))
            counts["both"] += len(full)
            for speaker in ("agent", "debtor"):
                ref = reference(truth, speaker)
                errors[speaker] += edits(ref, words(texts[speaker]))
                counts[speaker] += len(ref)
            print(
                f"  call {i}: {duration_of(stereo):5.1f} s, {len(truth)} turns; plain "
                f"{edits(full, words(text))}/{len(full)} word errors, dialguard "
                f"{edits(full, words(texts['both']))}/{len(full)}"
            )

    def wer(key: str) -> str:
        return f"{errors[key] / max(1, counts[key]):.1%}"

    print(f"\n{'':10} {'x real time':>11} {'RTF':>7} {'wall s':>7} {'CPU s':>7}  WER")
    print(
        f"{'plain':10} {audio / wall['plain']:10.1f}x {wall['plain'] / audio:7.4f} "
        f"{wall['plain']:7.1f} {cpu['plain']:7.1f}  {wer('plain')} (mixed reference)"
    )
    print(
        f"{'dialguard':10} {audio / wall['dialguard']:10.1f}x "
        f"{wall['dialguard'] / audio:7.4f} {wall['dialguard']:7.1f} {cpu['dialguard']:7.1f}  "
        f"agent {wer('agent')}, debtor {wer('debtor')}, both merged {wer('both')}"
    )
    print(
        f"\nthroughput dialguard / plain: {wall['plain'] / wall['dialguard']:.2f}x "
        f"(CPU time: {cpu['plain'] / cpu['dialguard']:.2f}x); load average after "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()

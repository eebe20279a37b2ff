"""Meaning-based flags: a sentence compared with each category's examples (pure, no model I/O).

Phrase rules catch the wording a pack's author thought of; agents say the
same thing a hundred other ways ("people who ignore us tend to get hurt").
Here an agent's sentence, already embedded by `qa_scoring.embedding`, is
compared by cosine with every example of every category of the pack:

- it is flagged for a category when its nearest example is at least the
  category's threshold (calibrated on the tuning corpus only, `calibrate`)
  and nearer than any of the pack's benign sentences, because an embedding
  model puts "we will take legal action as the contract allows" close to
  "we will send people to your home" and only a lawful neighbour tells them
  apart;
- negation and reported speech are judged with the phrase rules' own logic
  (`matching.negator_count`, `matching.reports_speech`): a sentence with more
  negators than its nearest example denies it, and read-back words are the
  debtor's;
- only the agent's channel counts, as for phrase rules;
- a segment a phrase rule already flagged for the same category gets no
  second flag: the rule is the better evidence (the exact words);
- every semantic flag is "listen first": listed for a reviewer, counted in
  the score only once a reviewer confirms it. On whole calls of the dev
  corpus its precision is well below the phrase rules' (docs/qa.md), and an
  agent must not lose points to a nearest neighbour.

Each flag carries its score and nearest examples, so a reviewer sees why it
was raised and can sort by how sure it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa_scoring.matching import negator_count, reports_speech
from qa_scoring.pack import Pack, RuleKind
from qa_scoring.rules import AGENT, CallText, Flag

Vectors = npt.NDArray[np.float32]

SEMANTIC_PREFIX = "semantic-"
NEAREST_SHOWN = 3
DEFAULT_SEVERITY = 3


@dataclass(frozen=True)
class ExampleBank:
    """A pack's examples as unit vectors, one matrix per category, and the benign ones."""

    texts: Mapping[str, tuple[str, ...]]
    vectors: Mapping[str, Vectors]
    thresholds: Mapping[str, float]
    benign_texts: tuple[str, ...] = ()
    benign: Vectors | None = None


@dataclass(frozen=True)
class Judgement:
    """How close one sentence came to one category, and what decided it."""

    category: str
    score: float  # cosine to the nearest example
    nearest: tuple[tuple[str, float], ...]
    benign_score: float | None  # cosine to the nearest benign sentence
    benign_nearest: str | None
    threshold: float

    @property
    def above(self) -> bool:
        """Near enough to the category, and nearer to it than to any lawful sentence."""
        if self.score < self.threshold:
            return False
        return self.benign_score is None or self.score > self.benign_score


def unit(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def judge(vector: Vectors, bank: ExampleBank) -> list[Judgement]:
    """Every category's nearest examples for one sentence, nearest category first."""
    v = unit(vector)
    benign_score: float | None = None
    benign_nearest: str | None = None
    if bank.benign is not None and len(bank.benign):
        sims = bank.benign @ v
        at = int(np.argmax(sims))
        benign_score, benign_nearest = float(sims[at]), bank.benign_texts[at]
    out: list[Judgement] = []
    for category, matrix in bank.vectors.items():
        sims = matrix @ v
        order = np.argsort(-sims)[:NEAREST_SHOWN]
        nearest = tuple((bank.texts[category][i], round(float(sims[i]), 4)) for i in order)
        out.append(
            Judgement(
                category,
                float(sims[order[0]]),
                nearest,
                benign_score,
                benign_nearest,
                bank.thresholds[category],
            )
        )
    out.sort(key=lambda j: -j.score)
    return out


def in_context(text: str, nearest_example: str, language: str) -> bool:
    """False when the sentence denies its nearest example or reports someone else's words."""
    if reports_speech(text, language):
        return False
    return negator_count(text, language) <= negator_count(nearest_example, language)


def category_severity(pack: Pack, category: str) -> int:
    """The gravest level the pack's own rules give the category: a paraphrase is as grave."""
    levels = [
        r.severity for r in pack.rules if r.category == category and r.kind is RuleKind.BANNED
    ]
    return max(levels, default=DEFAULT_SEVERITY)


def semantic_flags(
    call: CallText,
    vectors: Mapping[int, Vectors],
    bank: ExampleBank,
    pack: Pack,
    rule_flags: Sequence[Flag] = (),
) -> list[Flag]:
    """Flags for the agent's segments (`vectors`: segment index to its embedding)."""
    flags: list[Flag] = []
    for doc, vector in sorted(vectors.items()):
        utterance = call.utterances[doc]
        if utterance.speaker != AGENT:
            continue
        text = call.normalised[doc].text
        # The nearest category only: one sentence is one act, and a threat sits close
        # to intimidation and insult alike; the phrase rules still flag a second one.
        for j in judge(vector, bank)[:1]:
            if not j.above or not in_context(text, j.nearest[0][0], call.language):
                continue
            if any(
                f.category == j.category and utterance.start <= f.start <= utterance.end
                for f in rule_flags
            ):
                continue
            moment = call.moment(doc, 0, len(text))
            severity = category_severity(pack, j.category)
            flags.append(
                Flag(
                    rule=f"{SEMANTIC_PREFIX}{j.category}",
                    category=j.category,
                    severity=severity,
                    speaker=utterance.speaker,
                    start=utterance.start,
                    end=utterance.end,
                    text=utterance.text,
                    matched=j.nearest[0][0],
                    confidence=moment.confidence,
                    needs_listening=True,  # see the module docstring
                    heard=utterance.text,
                    description=pack.category_label(j.category),
                    consequence=pack.consequences.get(severity, ""),
                    weakest=moment.weakest,
                    source="semantic",
                    score=j.score,
                    nearest=j.nearest,
                )
            )
    return flags


def effective_score(j: Judgement, text: str, language: str) -> float | None:
    """The score a threshold is compared with, or None where nothing could flag it.

    What calibration sees: a sentence nearer to a benign one, negated or
    reported is never flagged, whatever the threshold.
    """
    if j.benign_score is not None and j.score <= j.benign_score:
        return None
    if not in_context(text, j.nearest[0][0], language):
        return None
    return j.score


def calibrate(positives: Sequence[float | None], negatives: Sequence[float | None]) -> float:
    """The threshold with the best F1 on labelled scores; of equals, the highest.

    The highest of equally good thresholds, because a false flag costs an
    agent points while a paraphrase missed today is caught by review and
    becomes an example tomorrow. Run on the tuning split only.
    """
    pos = [s for s in positives if s is not None]
    neg = [s for s in negatives if s is not None]
    candidates = sorted({round(s, 4) for s in (*pos, *neg)}, reverse=True)
    if not pos:
        return 1.0
    best, best_f1 = 1.0, -1.0
    for t in candidates:
        tp = sum(1 for s in pos if s >= t)
        fp = sum(1 for s in neg if s >= t)
        fn = len(positives) - tp
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-9:
            best, best_f1 = t, f1
    return best

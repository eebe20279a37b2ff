"""Meaning-based flags: a sentence compared with each category's examples (pure, no model I/O).

Phrase rules catch the wording a pack's author thought of; agents say the
same thing a hundred other ways ("people who ignore us tend to get hurt").
Here an agent's sentence, already embedded by `qa_scoring.embedding`, is
judged against the pack's example sets:

- two kinds of evidence are averaged into one probability per category: a
  small softmax classifier fitted on the pack's examples (the benign
  sentences are its "lawful" class) when the bank is built, and a softmax
  over the cosine of the sentence's nearest example of each category and
  of its nearest benign sentence. With 10-20 examples a category, the
  nearest example alone is noisy (e5's cosines all lie between 0.8 and
  0.95, and a threat sits next to intimidation); the classifier learns
  which directions separate the categories, the nearest example keeps a
  reviewer's single new example decisive near itself. On the tuning splits,
  5-fold cross-validation (docs/qa.md) chose this over the nearest example
  with per-category cosine thresholds (mean F1 0.72 -> 0.80 English,
  0.60 -> 0.80 Chinese); averaging the 3 nearest helped the cosine alone,
  not the combination;
- a sentence is flagged for its most probable category when that
  probability reaches the category's threshold (calibrated on the tuning
  split by cross-validation, `calibrate`): a lawful neighbour ("we will take
  legal action as the contract allows") takes probability from the category
  instead of vetoing it outright;
- negation and reported speech are judged with the phrase rules' own logic
  (`matching.negator_count`, `matching.reports_speech`): a sentence with more
  negators than its nearest example denies it, and read-back words are the
  debtor's;
- only the agent's channel counts, as for phrase rules;
- a segment a phrase rule already flagged for the same category gets no
  second flag: the rule is the better evidence (the exact words);
- every semantic flag is "listen first": listed for a reviewer, counted in
  the score only once a reviewer confirms it. Its held-out precision is
  below the phrase rules' (docs/qa.md), and an agent must not lose points
  to a nearest neighbour.

Each flag carries its score and nearest examples, so a reviewer sees why it
was raised and can sort by how sure it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qa_scoring.matching import negator_count, reports_speech
from qa_scoring.pack import Pack, RuleKind
from qa_scoring.rules import AGENT, CallText, Flag

Vectors = npt.NDArray[np.float32]

SEMANTIC_PREFIX = "semantic-"
NEAREST_SHOWN = 3
DEFAULT_SEVERITY = 3

# Chosen by 5-fold cross-validation on the tuning splits only (docs/qa.md); the same
# values for English and Chinese, since per-language choices differed by noise.
K_NEAREST = 1  # nearest examples averaged per category and benign: 1-3 scored alike in CV
KNN_TEMPERATURE = 0.02  # cosines differ by hundredths: sharpen before the softmax
CLASSIFIER_SCALE = 30.0  # centred unit vectors are small: scale before the linear layer
CLASSIFIER_L2 = 0.001
CLASSIFIER_STEPS = 300
CLASSIFIER_RATE = 0.5
CLASSIFIER_WEIGHT = 0.5  # the classifier's share of the probability; the rest is k-nearest
BENIGN = "benign"


@dataclass(frozen=True)
class Classifier:
    """Softmax regression over centred embeddings: one column per category, the last benign."""

    mean: Vectors
    weights: Vectors  # (dimensions + 1, categories + 1), the last row the bias

    def probabilities(self, vector: Vectors) -> Vectors:
        z = np.append((vector - self.mean) * CLASSIFIER_SCALE, 1.0).astype(np.float32)
        return _softmax(z @ self.weights)


def _softmax(logits: Vectors) -> Vectors:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    out: Vectors = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out


def fit_classifier(matrix: Vectors, labels: Sequence[int], classes: int) -> Classifier:
    """Full-batch gradient descent from zero: deterministic, and fast for a few hundred rows.

    Fitted whenever a bank is built, so a reviewer's new example changes the
    next decision without a training step anyone has to run.
    """
    n, dims = matrix.shape
    mean = matrix.mean(axis=0).astype(np.float32)
    x = np.hstack([(matrix - mean) * CLASSIFIER_SCALE, np.ones((n, 1), np.float32)])
    target = np.eye(classes, dtype=np.float32)[np.asarray(labels)]
    weights = np.zeros((dims + 1, classes), dtype=np.float32)
    for _ in range(CLASSIFIER_STEPS):
        gradient = x.T @ (_softmax(x @ weights) - target) / n
        gradient[:-1] += CLASSIFIER_L2 * weights[:-1]
        weights -= CLASSIFIER_RATE * gradient
    return Classifier(mean, weights.astype(np.float32))


@dataclass(frozen=True)
class ExampleBank:
    """A pack's examples as unit vectors, one matrix per category, and the benign ones.

    The classifier is fitted from them when the bank is made (`embedding.E5Embedder.bank`).
    """

    texts: Mapping[str, tuple[str, ...]]
    vectors: Mapping[str, Vectors]
    thresholds: Mapping[str, float]
    benign_texts: tuple[str, ...] = ()
    benign: Vectors | None = None
    classifier: Classifier | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.classifier is None and self.vectors:
            names = list(self.vectors)
            parts = [self.vectors[c] for c in names]
            labels = [n for n, c in enumerate(names) for _ in range(len(self.vectors[c]))]
            if self.benign is not None and len(self.benign):
                parts.append(self.benign)
                labels += [len(names)] * len(self.benign)
            matrix = np.vstack(parts).astype(np.float32)
            object.__setattr__(self, "classifier", fit_classifier(matrix, labels, len(names) + 1))


@dataclass(frozen=True)
class Judgement:
    """How likely one sentence is to be one category, and what decided it."""

    category: str
    score: float  # probability of the category (classifier and nearest examples)
    nearest: tuple[tuple[str, float], ...]  # the nearest examples and their cosines
    benign_score: float | None  # cosine to the nearest benign sentence
    benign_nearest: str | None
    threshold: float

    @property
    def above(self) -> bool:
        return self.score >= self.threshold


def unit(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _mean_nearest(sims: Vectors) -> float:
    return float(np.sort(sims)[::-1][:K_NEAREST].mean())


def judge(vector: Vectors, bank: ExampleBank) -> list[Judgement]:
    """Every category's probability and nearest examples for one sentence, likeliest first."""
    v = unit(vector)
    benign_score: float | None = None
    benign_nearest: str | None = None
    names = list(bank.vectors)
    near_means = []
    nearest_of: dict[str, tuple[tuple[str, float], ...]] = {}
    for category in names:
        sims = bank.vectors[category] @ v
        order = np.argsort(-sims)[:NEAREST_SHOWN]
        nearest_of[category] = tuple(
            (bank.texts[category][i], round(float(sims[i]), 4)) for i in order
        )
        near_means.append(_mean_nearest(sims))
    if bank.benign is not None and len(bank.benign):
        sims = bank.benign @ v
        at = int(np.argmax(sims))
        benign_score, benign_nearest = float(sims[at]), bank.benign_texts[at]
        near_means.append(_mean_nearest(sims))
    knn = _softmax(np.asarray(near_means, dtype=np.float32) / KNN_TEMPERATURE)
    if bank.classifier is not None:
        learnt = bank.classifier.probabilities(v)[: len(knn)]
        probability = CLASSIFIER_WEIGHT * learnt + (1 - CLASSIFIER_WEIGHT) * knn
    else:
        probability = knn
    out = [
        Judgement(
            category,
            float(probability[n]),
            nearest_of[category],
            benign_score,
            benign_nearest,
            bank.thresholds[category],
        )
        for n, category in enumerate(names)
    ]
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

    What calibration sees: a negated or reported sentence is never flagged,
    whatever the threshold.
    """
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

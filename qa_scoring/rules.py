"""Applying a rule pack to one call: flags for banned wording, missing required wording.

What a QA reviewer expects from a flag, and why it is built this way:

- it points at the moment: start and end come from the timestamps of the words
  the match rests on when the transcript has them (a 30-second segment is no
  pointer), else from the segment;
- it says how sure it is: the confidence is the mean probability of those
  words, and a flag that rests on any word below the pack's threshold is marked
  "listen first" (`needs_listening`): a misheard word must not cost an agent
  points until a person has listened;
- it reads what was said, in whatever form the ASR wrote it: rules see the
  segment normalised (還款 as 还款, 六十二天 as 62天: `transcribe.normalise`),
  while the flag quotes and times the segment's own words;
- it is the agent's: a rule for the agent never looks at debtor segments, so a
  debtor swearing at the agent is not the agent swearing;
- one flag per rule per segment: the same insult matched by two overlapping
  phrases is one thing the agent said.

Required wording is checked within its time scope (identity in the first 30 s)
and reported as missing, not flagged; like the debtor's confirmation, its
patterns also match homophones (`CallText.search`'s `sounds`), so a misheard
character counts against the agent no more than it does in banned wording.
The right-party-verification order rule walks the call in time order: the
debt may only be mentioned after the agent asked who is on the line and the
debtor confirmed it is them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from qa_scoring.matching import (
    Hit,
    Phrase,
    TextIndex,
    Tokens,
    contains,
    is_negated,
    is_reported,
    sound_alike,
    sound_alike_pattern,
    tokenize,
)
from qa_scoring.pack import Pack, Rule, RuleKind, SpeakerScope, Wording
from transcribe.normalise import normalise_text

AGENT = "agent"
DEBTOR = "debtor"


@dataclass(frozen=True, slots=True)
class TimedWord:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True, slots=True)
class Utterance:
    """One transcript segment as QA needs it (the `dialguard transcribe --json` segment)."""

    start: float
    end: float
    speaker: str  # "agent" | "debtor"
    text: str
    confidence: float
    words: tuple[TimedWord, ...] = ()


@dataclass(frozen=True)
class Flag:
    rule: str
    category: str
    severity: int
    speaker: str
    start: float
    end: float
    text: str
    matched: str  # the rule's phrase (or what a pattern matched)
    confidence: float
    needs_listening: bool  # "listen first": rests on a word below the pack's bar
    heard: str = ""  # the words in the transcript, 环款 where the phrase says 还款
    description: str = ""
    consequence: str = ""
    weakest: float | None = None  # the lowest probability among the words it rests on
    source: str = "rule"  # "rule": a phrase or pattern matched; "semantic": the meaning did
    score: float | None = None  # semantic: probability of the category (semantic.judge)
    nearest: tuple[tuple[str, float], ...] = ()  # semantic: the nearest examples and cosines

    @property
    def proven(self) -> bool:
        return not self.needs_listening

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "speaker": self.speaker,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "text": self.text,
            "matched": self.matched,
            "heard": self.heard,
            "confidence": round(self.confidence, 3),
            "weakest_word": None if self.weakest is None else round(self.weakest, 3),
            "needs_listening": self.needs_listening,
            "listen_first": self.needs_listening,
            "description": self.description,
            "consequence": self.consequence,
            "source": self.source,
            "score": None if self.score is None else round(self.score, 4),
            "nearest": [{"example": e, "score": round(c, 4)} for e, c in self.nearest],
        }


@dataclass(frozen=True)
class Missing:
    """A required statement not found in its time scope."""

    rule: str
    category: str
    description: str = ""
    within_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "description": self.description,
            "within_seconds": self.within_seconds,
        }


@dataclass(frozen=True)
class Evaluation:
    flags: tuple[Flag, ...]
    missing: tuple[Missing, ...]
    warnings: tuple[str, ...] = ()


# --- the call, tokenised once ---------------------------------------------------------


class CallText:
    """A call's segments tokenised for one language and indexed; reused by every rule."""

    def __init__(self, utterances: Sequence[Utterance], language: str) -> None:
        self.utterances = tuple(sorted(utterances, key=lambda u: (u.start, u.end)))
        self.language = language
        # Rules see the normalised text (simplified, digits, half-width letters:
        # transcribe.normalise); `normalised` maps each match back to the segment's
        # own text, whose words carry the times. Newlines inside a segment would end
        # `$` early; a space keeps offsets unchanged.
        self.normalised = tuple(normalise_text(u.text.replace("\n", " ")) for u in self.utterances)
        self.tokens = tuple(tokenize(n.text, language) for n in self.normalised)
        self.index = TextIndex(self.tokens)
        self._joined = "\n".join(t.text for t in self.tokens)
        self._offsets: list[int] = []
        offset = 0
        for t in self.tokens:
            self._offsets.append(offset)
            offset += len(t.text) + 1
        self._scopes: dict[tuple[SpeakerScope, float | None], frozenset[int]] = {}
        self._word_spans: dict[int, list[tuple[int, int]]] = {}
        self._sounds: tuple[str, tuple[str, ...]] | None = None

    def _texts(self, sounds: bool) -> tuple[str, tuple[str, ...]]:
        """The joined text and each segment's text, as written or sound-alike (same offsets)."""
        if not sounds:
            return self._joined, tuple(t.text for t in self.tokens)
        if self._sounds is None:
            self._sounds = (
                sound_alike(self._joined),
                tuple(sound_alike(t.text) for t in self.tokens),
            )
        return self._sounds

    def docs(self, speaker: SpeakerScope, within: float | None = None) -> frozenset[int]:
        key = (speaker, within)
        if key not in self._scopes:
            self._scopes[key] = frozenset(
                i
                for i, u in enumerate(self.utterances)
                if (speaker is SpeakerScope.ANY or u.speaker == speaker.value)
                and (within is None or u.start < within)
            )
        return self._scopes[key]

    def search(
        self, wording: Wording, tolerance: float, docs: frozenset[int], sounds: bool = False
    ) -> list[_Found]:
        """Every place the wording occurs in `docs`, ordered by segment.

        `sounds`: patterns also match homophones (`matching.sound_alike`), the
        tolerance phrases always have through pinyin. For what the agent must say
        and the debtor's confirmation, where a misheard character would count
        against the agent; never for banned wording, whose patterns are the pack's
        way of asking for the exact characters.
        """
        found: list[_Found] = []
        if not docs:
            return found
        for phrase in wording.phrases:
            for hit in self.index.find(phrase, tolerance, docs):
                start, end = hit.char_span(self.tokens[hit.doc])
                found.append(_Found(hit.doc, start, end, phrase.text, hit, phrase, False))
        for pattern in wording.patterns:
            # A negator the pattern's author wrote is part of the rule; one the pattern's
            # gaps swallowed ("I'm not an attorney") is context, so the source stands in
            # for the phrase when negation is judged.
            source = Phrase(
                pattern.pattern, self.language, tokenize(pattern.pattern, self.language).keys
            )
            for doc, start, end in self._regex(pattern, docs, sounds):
                span_hit = _hit_for_span(self.tokens[doc], doc, start, end)
                text = self.tokens[doc].text[start:end]
                found.append(_Found(doc, start, end, text, span_hit, source, True))
        # Within a segment, phrases before patterns: a phrase pins the words themselves
        # (去你单位闹), a pattern often the whole clause around them (不还钱就去你单位).
        found.sort(key=lambda f: (f.doc, f.pattern, f.start))
        return found

    def _regex(
        self, pattern: re.Pattern[str], docs: frozenset[int], sounds: bool = False
    ) -> Iterator[tuple[int, int, int]]:
        # One pass over the whole call is far cheaper than a search per segment; a
        # match that runs across a segment boundary is retried inside each segment.
        joined, texts = self._texts(sounds)
        if sounds:
            pattern = sound_alike_pattern(pattern)
        for m in pattern.finditer(joined):
            first = bisect.bisect_right(self._offsets, m.start()) - 1
            last = bisect.bisect_right(self._offsets, max(m.start(), m.end() - 1)) - 1
            if first == last:
                if first in docs:
                    base = self._offsets[first]
                    yield first, m.start() - base, m.end() - base
                continue
            for doc in range(first, last + 1):
                if doc in docs:
                    inner = pattern.search(texts[doc])
                    if inner:
                        yield doc, inner.start(), inner.end()

    def heard(self, doc: int, start: int, end: int) -> str:
        """What the segment itself says where the normalised text[start:end] matched (還款)."""
        a, b = self.normalised[doc].original_span(start, end)
        return self.utterances[doc].text[a:b]

    def moment(self, doc: int, start: int, end: int) -> Moment:
        """When normalised text[start:end] of a segment was said and how sure the ASR was.

        Word-level where the transcript has words, else the segment's.
        """
        utterance = self.utterances[doc]
        start, end = self.normalised[doc].original_span(start, end)
        spans = self._spans(doc)
        words = [
            w for w, (a, b) in zip(utterance.words, spans, strict=True) if a < end and b > start
        ]
        if not words:
            return Moment(
                utterance.start, utterance.end, utterance.confidence, utterance.confidence
            )
        probabilities = [w.probability for w in words]
        return Moment(
            min(w.start for w in words),
            max(w.end for w in words),
            sum(probabilities) / len(probabilities),
            min(probabilities),
        )

    def _spans(self, doc: int) -> list[tuple[int, int]]:
        """Where each ASR word sits in the segment text.

        Whisper's words concatenate to the segment text, so a forward search finds
        them; where it does not (text edited, redacted), words are spread over the
        text by length, which still lands the flag on the right part of the segment.
        """
        if doc in self._word_spans:
            return self._word_spans[doc]
        text = self.utterances[doc].text
        words = [w.word.strip() for w in self.utterances[doc].words]
        spans: list[tuple[int, int]] = []
        cursor = 0
        for word in words:
            if not word:  # a bare space or punctuation token: no width of its own
                spans.append((cursor, cursor))
                continue
            at = text.find(word, cursor)
            if at < 0:
                break
            spans.append((at, at + len(word)))
            cursor = at + len(word)
        if len(spans) != len(words):
            total = sum(len(w) for w in words) or 1
            spans, position = [], 0.0
            for word in words:
                width = len(text) * len(word) / total
                spans.append((int(position), max(int(position) + 1, int(position + width))))
                position += width
        self._word_spans[doc] = spans
        return spans


@dataclass(frozen=True, slots=True)
class Moment:
    """Where a match was said, the mean probability of its words and the weakest one's."""

    start: float
    end: float
    confidence: float
    weakest: float


@dataclass(frozen=True, slots=True)
class _Found:
    doc: int
    start: int
    end: int
    matched: str
    hit: Hit | None
    phrase: Phrase
    pattern: bool


def _hit_for_span(tokens: Tokens, doc: int, start: int, end: int) -> Hit | None:
    inside = [i for i, (a, b) in enumerate(tokens.spans) if a < end and b > start]
    if not inside:
        return None
    return Hit(doc, inside[0], inside[-1] + 1, 0.0)


# --- judging one match ----------------------------------------------------------------


def _in_context(call: CallText, rule: Rule, found: _Found, negation: bool) -> bool:
    """False when the words are negated, reported, or excused in this segment."""
    tokens = call.tokens[found.doc]
    if rule.exceptions and any(contains(tokens, e) for e in rule.exceptions):
        return False
    hit = found.hit
    if hit is None:
        return True
    if negation and is_negated(tokens, hit, found.phrase):
        return False
    return not (rule.ignore_reported and is_reported(tokens, hit, call.language))


def _flag(call: CallText, pack: Pack, rule: Rule, found: _Found, listen_below: float) -> Flag:
    moment = call.moment(found.doc, found.start, found.end)
    utterance = call.utterances[found.doc]
    return Flag(
        rule=rule.id,
        category=rule.category,
        severity=rule.severity,
        speaker=utterance.speaker,
        start=moment.start,
        end=moment.end,
        text=utterance.text,
        matched=found.matched,
        confidence=moment.confidence,
        # "Listen first": one word the match rests on below the bar is enough. A mean
        # hides it: 千款 heard at 0.3 among words at 0.9 averages above any bar, and
        # 千款 is exactly the word the flag turns on.
        needs_listening=moment.weakest < listen_below,
        weakest=moment.weakest,
        heard=call.heard(found.doc, found.start, found.end),
        description=rule.description,
        consequence=pack.consequences.get(rule.severity, ""),
    )


def _banned(call: CallText, pack: Pack, rule: Rule, listen_below: float) -> list[Flag]:
    flags: list[Flag] = []
    flagged: set[int] = set()
    docs = call.docs(rule.speaker, rule.within_seconds)
    for found in call.search(rule.wording, rule.tolerance, docs):
        if found.doc in flagged or not _in_context(call, rule, found, rule.negation):
            continue
        flag = _flag(call, pack, rule, found, listen_below)
        if rule.within_seconds is not None and flag.start > rule.within_seconds:
            continue
        flagged.add(found.doc)
        flags.append(flag)
    return flags


def _required(call: CallText, rule: Rule) -> Missing | None:
    docs = call.docs(rule.speaker, rule.within_seconds)
    for found in call.search(rule.wording, rule.tolerance, docs, sounds=True):
        if not _in_context(call, rule, found, rule.negation):
            continue
        if (
            rule.within_seconds is not None
            and call.moment(found.doc, found.start, found.end).start > rule.within_seconds
        ):
            continue
        return None
    return Missing(rule.id, rule.category, rule.description, rule.within_seconds)


def _verify_order(
    call: CallText, pack: Pack, rule: Rule, listen_below: float
) -> tuple[list[Flag], list[str]]:
    """The debt mentioned before the person on the line confirmed being the debtor.

    Telling a relative or colleague that someone owes money is the disclosure
    the rules forbid, and the agent cannot know who answered until they asked
    and heard "是我" / "yes, speaking". A denial ("他不在", "wrong number") means
    the agent must ask again.
    """
    debtor_docs = call.docs(SpeakerScope.DEBTOR)
    if not call.utterances:
        return [], []
    if not debtor_docs:
        return [], [
            f"rule '{rule.id}' not checked: the transcript has no debtor speech "
            "(a mono recording?), so who was on the line cannot be known"
        ]
    agent_docs = call.docs(rule.speaker, rule.within_seconds)
    # The question and the confirmation get the tolerance banned wording has (the
    # rule's, and homophones): a debtor's 对 heard as 队 is still "yes, it's me",
    # and missing it would flag a compliant agent. A denial only ever undoes a
    # verification, so it is matched as written.
    asks = {f.doc for f in call.search(rule.ask, rule.tolerance, agent_docs, sounds=True)}
    denials = {f.doc for f in call.search(rule.deny, 0.0, debtor_docs)}
    confirms: dict[int, list[_Found]] = {}
    for f in call.search(rule.confirm, rule.tolerance, debtor_docs, sounds=True):
        confirms.setdefault(f.doc, []).append(f)
    verified_at = len(call.utterances)
    asked = False
    for doc in range(len(call.utterances)):
        if doc in asks:
            asked = True
        elif asked and doc in debtor_docs:
            if doc in denials:
                asked = False
            elif any(_in_context(call, rule, f, rule.negation) for f in confirms.get(doc, ())):
                verified_at = doc
                break
    for found in call.search(rule.wording, rule.tolerance, agent_docs):
        if found.doc >= verified_at:
            break
        if _in_context(call, rule, found, negation=False):
            return [_flag(call, pack, rule, found, listen_below)], []
    return [], []


def evaluate(call: CallText, pack: Pack, listen_below: float | None = None) -> Evaluation:
    """All flags (in time order) and missing items of one call under one pack."""
    threshold = pack.needs_listening_below if listen_below is None else listen_below
    flags: list[Flag] = []
    missing: list[Missing] = []
    warnings: list[str] = []
    for rule in pack.rules:
        if rule.kind is RuleKind.BANNED:
            flags.extend(_banned(call, pack, rule, threshold))
        elif rule.kind is RuleKind.REQUIRED:
            item = _required(call, rule)
            if item is not None:
                missing.append(item)
        else:
            found, notes = _verify_order(call, pack, rule, threshold)
            flags.extend(found)
            warnings.extend(notes)
    flags.sort(key=lambda f: (f.start, -f.severity, f.rule))
    return Evaluation(tuple(flags), tuple(missing), tuple(warnings))

"""Text normalisation and phrase matching that survives ASR errors and reads context.

Transcripts are machine output: Chinese comes back with homophones (还款 heard
as 环款, 单位 as 单卫), English with odd casing, punctuation and numbers written
either way. A QA rule is written once, by a person, in clean wording, so both
sides are reduced to the same tokens before they are compared:

- a Chinese character becomes its tone-less pinyin (pypinyin); a transcript
  character is read its most common way, a phrase character also in the
  phrase's context (lazy_pinyin) and, for everyday polyphones, its second way,
  and the two match when the phrase's readings include the transcript's. One
  contextual reading alone is not enough: lazy_pinyin reads 还款 as "hai kuan"
  but 环款 as "huan kuan", losing exactly the homophone errors we are here for;
- a Latin word is NFKC-folded and lower-cased, contractions are spelled out
  (won't -> will not) so a negation is always the token "not", and digits become
  number words for English (24 and twenty-four are the same token run).

A phrase matches a run of tokens exactly, or within a rule's tolerance: a
token-level edit distance (`transcribe.phrases.locate`, shared with the
dialer's carrier announcements), normalised by the phrase length, where
substituting one word for a similar one costs their letter edit distance (0..1)
and adding or dropping a word costs 1. A fuzzy match must still contain at
least half of the phrase's tokens verbatim and every content word at most
misspelt, so a window of unrelated words never scores its way in, and neither
does "I'm with the collections department" against "I am with the IRS".
No phrase matches across clause punctuation ("喂，还在吗" holds no 未还).

Matching alone is not judgement. A reviewer does not flag "we will never sue
you" or "我们不是公安" or the agent repeating what the debtor said ("您刚才说…");
`is_negated` and `is_reported` look at the words before a match, stopping at
the clause boundary, so those sentences are told apart from the violations
they resemble.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from transcribe.normalise import normalise_text
from transcribe.phrases import HAN, fold, levenshtein, locate

Key = frozenset[str]
"""One token: the set of forms it may stand for (pinyin readings, or a single word)."""

LANGUAGES = ("zh", "en")

_TOKEN = re.compile(
    rf"(?P<han>[{HAN}]+)"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"|(?P<stop>[,.;:!?，。；：！？、…]+)"
    rf"|(?P<word>(?:(?![{HAN}])[^\W\d_])+(?:['’](?:(?![{HAN}])[^\W\d_])+)*)"
)


# --- tokens ---------------------------------------------------------------------------


BREAK: Key = frozenset({"|"})
"""Stands for clause punctuation, so no phrase matches across "喂，还…" as 未还."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """A text and its tokens; `spans` index the original text, so a match maps back to it."""

    text: str
    keys: tuple[Key, ...]
    spans: tuple[tuple[int, int], ...]


@cache
def _readings(char: str) -> tuple[str, ...]:
    """Tone-less readings of a character, most common first (pypinyin's order)."""
    from pypinyin import Style, pinyin

    readings = pinyin(char, style=Style.NORMAL, heteronym=True)[0]
    # 您 is the polite 你: agents say it, phrases are written with 你.
    readings = ["ni" if r == "nin" else r for r in readings]
    return tuple(r for r in readings if r.isascii() and r.isalpha()) or (char,)


# Polyphones (多音字) whose first two readings are both everyday speech. A phrase
# char takes both, so 还款 (huan kuan, which pypinyin's phrase table reads "hai kuan")
# still meets 环款 heard by the ASR. Rare readings are left out on purpose: with
# every reading, 他 (also "tuo") would make the phrase 他欠了 match 拖欠了.
_EVERYDAY_POLYPHONES = frozenset(
    "还行长重给着了得地的都说调便乐差发干传朝少好只种空数量处应相当参降觉间正会系结"
)


@cache
def _text_key(char: str) -> Key:
    return frozenset(_readings(char)[:1])


@lru_cache(maxsize=100_000)
def _word_keys(raw: str, kind: str, language: str) -> tuple[Key, ...]:
    """Keys of one written word or numeral; cached, as calls repeat their vocabulary."""
    if kind == "num":
        digits = fold(raw)
        words = number_words(digits) if language == "en" else [digits.replace(",", "")]
    else:
        words = word_forms(raw)
    return tuple(frozenset({w}) for w in words)


def _phrase_keys(text: str) -> dict[int, Key]:
    """Readings of each Chinese character of a phrase: in context, most common, everyday."""
    from pypinyin import Style, lazy_pinyin

    keys: dict[int, Key] = {}
    for run in re.finditer(f"[{HAN}]+", text):
        context = lazy_pinyin(run.group(), style=Style.NORMAL)
        if len(context) != len(run.group()):
            context = [_readings(c)[0] for c in run.group()]
        for offset, (char, reading) in enumerate(zip(run.group(), context, strict=True)):
            readings = _readings(char)
            forms = {"ni" if reading == "nin" else reading, readings[0]}
            if char in _EVERYDAY_POLYPHONES:
                forms.update(readings[:2])
            keys[run.start() + offset] = frozenset(f for f in forms if f.isascii() and f.isalpha())
    return keys


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ONES = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def _int_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10], *([_ONES[n % 10]] if n % 10 else [])]
    for size, name in _SCALES:
        if n >= size:
            rest = n % size
            return [*_int_words(n // size), name, *(_int_words(rest) if rest else [])]
    raise AssertionError(n)  # pragma: no cover - every n >= 100 meets a scale


def number_words(digits: str) -> list[str]:
    """English words for a numeral as ASR writes it ("2,500", "12.5"); huge ones stay digits."""
    whole, _, fraction = digits.replace(",", "").partition(".")
    value = int(whole)
    if value >= 10**12:
        return [whole]
    words = _int_words(value)
    if fraction:
        words += ["point", *(_ONES[int(d)] for d in fraction)]
    return words


_S_IS = frozenset(_words("he she it that there what who here where how"))
_NT_BASES = {"wo": "will", "ca": "can", "sha": "shall", "ai": "is"}
_SUFFIXES = {"ll": "will", "re": "are", "ve": "have", "m": "am", "d": "would"}


def word_forms(word: str) -> list[str]:
    """A written word as the tokens a phrase author would have typed (contractions spelled out)."""
    w = fold(word).replace("’", "'")
    if "'" not in w:
        return [w]
    head, _, tail = w.partition("'")
    if tail == "t" and head.endswith("n") and len(head) > 1:
        base = head[:-1]
        return [_NT_BASES.get(base, base), "not"]
    if tail in _SUFFIXES:
        return [head, _SUFFIXES[tail]]
    if tail == "s" and head in _S_IS:
        return [head, "is"]
    return [w.replace("'", "")]


def tokenize(text: str, language: str, *, phrase: bool = False) -> Tokens:
    """Tokens of a transcript text, or (`phrase`) of a rule phrase, which gets more readings.

    A transcript character is read one way, its most common reading: context-free
    and fast enough for a 3-hour call. A phrase character also gets its reading in
    the phrase's context and, for everyday polyphones, its second reading, so the
    two meet whichever way the ASR spelt the sound.
    """
    keys: list[Key] = []
    spans: list[tuple[int, int]] = []
    phrase_keys = _phrase_keys(text) if phrase else {}
    for m in _TOKEN.finditer(text):
        span = m.span()
        if m.lastgroup == "han":  # one token per character
            for i, char in enumerate(m.group(), span[0]):
                keys.append(phrase_keys.get(i) or _text_key(char))
                spans.append((i, i + 1))
            continue
        if m.lastgroup == "stop":
            forms = [BREAK]
        else:
            forms = list(_word_keys(m.group(), m.lastgroup or "word", language))
        for key in forms:
            keys.append(key)
            spans.append(span)
    return Tokens(text, tuple(keys), tuple(spans))


# --- distances ------------------------------------------------------------------------


_TOKEN_DISTANCES: dict[tuple[Key, Key], float] = {}


def token_distance(a: Key, b: Key) -> float:
    """0 when the tokens can be the same word (shared reading), else the closest letter distance."""
    if not a.isdisjoint(b):
        return 0.0
    cached = _TOKEN_DISTANCES.get((a, b))
    if cached is None:
        cached = min(levenshtein(x, y) / max(len(x), len(y)) for x in a for y in b)
        if len(_TOKEN_DISTANCES) > 200_000:  # bounded: a long-lived worker sees many words
            _TOKEN_DISTANCES.clear()
        _TOKEN_DISTANCES[(a, b)] = cached
    return cached


# --- phrases and the call index -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    language: str
    keys: tuple[Key, ...]


def compile_phrase(text: str, language: str) -> Phrase:
    """A rule's phrase, tokenised in the form transcripts are (`transcribe.normalise`).

    `text` stays as the author wrote it, for the flag to show; 逾期六十二天 is
    matched as 逾期62天, and a phrase typed in traditional characters as simplified.
    """
    normal = normalise_text(text).text
    keys = tuple(k for k in tokenize(normal, language, phrase=True).keys if k is not BREAK)
    if not keys:
        raise ValueError(f"phrase {text!r} has no words or characters to match")
    return Phrase(text, language, keys)


@dataclass(frozen=True, slots=True)
class Hit:
    """A phrase found in document `doc`, tokens [first, last); `distance` is normalised."""

    doc: int
    first: int
    last: int
    distance: float

    def char_span(self, tokens: Tokens) -> tuple[int, int]:
        return tokens.spans[self.first][0], tokens.spans[self.last - 1][1]


class TextIndex:
    """Every token of a call's segments, indexed by reading.

    A 3-hour call has tens of thousands of tokens and a pack a few hundred
    phrases; looking each phrase up by its rarest token, instead of sliding it
    over every segment, keeps a whole pack to a few tenths of a second on such a
    call, most of it spent tokenising.
    """

    def __init__(self, docs: Sequence[Tokens]) -> None:
        self.docs = docs
        postings: dict[str, list[tuple[int, int]]] = {}
        for d, doc in enumerate(docs):
            for p, key in enumerate(doc.keys):
                for form in key:
                    postings.setdefault(form, []).append((d, p))
        self._postings = postings

    def _frequency(self, key: Key) -> int:
        return sum(len(self._postings.get(form, ())) for form in key)

    def _anchored(
        self, phrase: Phrase, positions: Iterable[int], docs: Collection[int] | None
    ) -> dict[int, set[int]]:
        """Candidate start tokens per document, from where the anchor positions occur."""
        starts: dict[int, set[int]] = {}
        for i in positions:
            for form in phrase.keys[i]:
                for d, p in self._postings.get(form, ()):
                    if docs is None or d in docs:
                        starts.setdefault(d, set()).add(p - i)
        return starts

    def find(
        self, phrase: Phrase, tolerance: float = 0.0, docs: Collection[int] | None = None
    ) -> list[Hit]:
        """Where `phrase` occurs, in document order; `docs` limits the search (speaker, time)."""
        if docs is not None and not isinstance(docs, set | frozenset):
            docs = set(docs)
        m = len(phrase.keys)
        order = sorted(range(m), key=lambda i: self._frequency(phrase.keys[i]))
        budget = tolerance * m
        if budget < 1e-9:
            return self._find_exact(phrase, order[0], docs)
        need = math.ceil(m / 2)
        # A fuzzy match holds half the phrase verbatim, and at least one of its content
        # words when it has function words too ("we will ... you" alone proves nothing):
        # anchoring on those content words is complete and far cheaper than on "you".
        content = [i for i in order if not phrase.keys[i] <= _FUNCTION_WORDS]
        anchors = content if 0 < len(content) < m else order[: m - need + 1]
        starts = self._anchored(phrase, anchors, docs)
        hits: list[Hit] = []
        reach = math.ceil(budget)
        for d in sorted(starts):
            keys = self.docs[d].keys
            for lo, hi in _clusters(sorted(starts[d]), m):
                a, b = max(0, lo - reach), min(len(keys), hi + m + reach)
                # The alignment is the costly part: skip regions that cannot hold
                # `need` of the phrase's tokens verbatim.
                region: frozenset[str] = frozenset().union(*keys[a:b])
                if sum(1 for key in phrase.keys if not key.isdisjoint(region)) < need:
                    continue
                if not _covers(phrase.keys, keys[a:b]):
                    continue
                hit = locate(phrase.keys, keys, token_distance, a, b)
                if hit is None:
                    continue
                cost, first, last = hit
                window = keys[first:last]
                if (
                    cost <= budget + 1e-9
                    and _verbatim(phrase.keys, window) >= need
                    and _covers(phrase.keys, window)
                ):
                    hits.append(Hit(d, first, last, cost / m))
        return hits

    def _find_exact(self, phrase: Phrase, anchor: int, docs: Collection[int] | None) -> list[Hit]:
        m = len(phrase.keys)
        hits: list[Hit] = []
        starts = self._anchored(phrase, [anchor], docs)
        for d in sorted(starts):
            keys = self.docs[d].keys
            for s in sorted(starts[d]):
                if s < 0 or s + m > len(keys):
                    continue
                if all(not phrase.keys[i].isdisjoint(keys[s + i]) for i in range(m)):
                    hits.append(Hit(d, s, s + m, 0.0))
        return hits


def _clusters(starts: list[int], width: int) -> Iterable[tuple[int, int]]:
    lo = hi = starts[0]
    for s in starts[1:]:
        if s - hi > width:
            yield lo, hi
            lo = s
        hi = s
    yield lo, hi


# Words that carry little of a phrase's meaning: a fuzzy match may lose or swap them.
_FUNCTION_WORDS = frozenset(
    _words(
        "a an the i me my we us our you your he him his she her it its they them their to of "
        "in on at for with from by and or is am are was were be been will would shall can "
        "could do does did have has had that this there"
    )
)
_NEAR = 0.4  # letter distance of an ASR slip (send/sent 0.25), not a different word


def _covers(phrase: Sequence[Key], window: Sequence[Key]) -> bool:
    """Every content word of the phrase is in the window, at most misspelt.

    Without this, "I'm with the collections department" is one substituted word
    away from "I am with the IRS": edit distance alone cannot tell a slip from
    the one word that carries the meaning.
    """
    return all(
        key <= _FUNCTION_WORDS or min(token_distance(key, w) for w in window) <= _NEAR
        for key in phrase
    )


def _verbatim(phrase: Sequence[Key], window: Sequence[Key]) -> int:
    return sum(1 for key in window if any(not key.isdisjoint(p) for p in phrase))


def contains(tokens: Tokens, phrase: Phrase) -> bool:
    """Exact presence of `phrase` in one text (exceptions, confirmations)."""
    keys, m = tokens.keys, len(phrase.keys)
    return any(
        all(not phrase.keys[i].isdisjoint(keys[s + i]) for i in range(m))
        for s in range(len(keys) - m + 1)
    )


# --- sound-alike text: patterns that tolerate homophones ------------------------------
#
# Phrases meet the ASR's homophones through pinyin; patterns match characters. For a
# banned rule that is on purpose (the pack moves 你妈 and 畜生 to patterns so 是你吗
# and 出生 are not insults). For wording the agent must say, and for the debtor's
# "对，是我", a misheard character would cost the agent instead: "逾期" said but
# 千款 written, the overdue facts reported missing. So those patterns are also
# tried on sound-alike text, where every Chinese character is replaced by one
# stand-in per reading, and the pattern's characters by the stand-ins of theirs:
# 千款 and 欠款 become the same two characters, one for one, so spans still hold.

_STAND_INS: dict[str, str] = {}


def _stand_in(reading: str) -> str:
    """One Chinese character per tone-less reading, so `[\\u4e00-\\u9fff]` still matches it."""
    found = _STAND_INS.get(reading)
    if found is None:
        found = _STAND_INS.setdefault(reading, chr(0x4E00 + len(_STAND_INS)))
    return found


@cache
def _sound_of(char: str) -> str:
    readings = _readings(char)
    return char if readings == (char,) else _stand_in(readings[0])


def _sounds_of_pattern_char(char: str) -> list[str]:
    readings = _readings(char)
    if readings == (char,):
        return [char]
    wanted = readings[:2] if char in _EVERYDAY_POLYPHONES else readings[:1]
    return list(dict.fromkeys(_stand_in(r) for r in wanted))


_HAN_CHAR = re.compile(f"[{HAN}]")


def sound_alike(text: str) -> str:
    """`text` with each Chinese character as the stand-in of its most common reading."""
    return _HAN_CHAR.sub(lambda m: _sound_of(m.group()), text)


@lru_cache(maxsize=4096)
def sound_alike_pattern(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern` for `sound_alike` text: each Chinese literal as the stand-ins of its readings.

    Only characters change: outside a class a polyphone becomes (?:A|B), inside a
    class its stand-ins are listed; escapes and the ends of a range stay as written.
    """
    source, out, i = pattern.pattern, [], 0
    in_class = False
    while i < len(source):
        char = source[i]
        if char == "\\":
            out.append(source[i : i + 2])
            i += 2
            continue
        if not in_class and char == "[":
            in_class = True
            j = i + 1 + (source[i + 1 : i + 2] == "^")
            j += source[j : j + 1] == "]"  # a ] first in a class is a literal
            out.append(source[i:j])
            i = j
            continue
        if in_class and char == "]":
            in_class = False
        elif _HAN_CHAR.fullmatch(char):
            sounds = _sounds_of_pattern_char(char)
            if in_class:
                in_range = source[i - 1 : i] == "-" or source[i + 1 : i + 2] == "-"
                char = char + "".join(sounds) if in_range else "".join(sounds)
            else:
                char = sounds[0] if len(sounds) == 1 else f"(?:{'|'.join(sounds)})"
        out.append(char)
        i += 1
    return re.compile("".join(out), pattern.flags)


# --- context: negation and reported speech --------------------------------------------

_CLAUSE_END = re.compile(r"[,.;:!?，。；：！？、…\n]|--|—|–")

_ZH_NEGATORS = ("不", "没", "别", "未", "无法", "并非", "绝非", "甭", "勿")
# Words that contain a negator character but negate nothing after them.
_ZH_NOT_NEGATION = (
    "不管",
    "不论",
    "不然",
    "要不",
    "不好意思",
    "不过",
    "不得不",
    "不停",
    "不断",
    "不少",
    "不仅",
    "特别",
    "别人",
    "别的",
    "区别",
    "分别",
    "级别",
    "个别",
    "未来",
    "实在不行",
    "不行的话",
    # A-not-A questions: 你是不是脑子有病 asks, it does not deny.
    "是不是",
    "是否",
    "要不要",
    "会不会",
    "能不能",
    "有没有",
    "对不对",
    "好不好",
    "行不行",
    "还不还",
)
# Where a new clause starts: a condition's consequence (不还钱就…), a contrast, or a new
# subject (你不还我们去…): a negator before it belongs to another clause.
_ZH_CLAUSE_WORDS = (
    "就",
    "否则",
    "不然",
    "要不",
    "的话",
    "但是",
    "可是",
    "不过",
    "如果",
    "要是",
    "那么",
    "然后",
    "所以",
    "我们",
    "咱们",
    "你们",
    "他们",
    "她们",
    "我",
    "你",
    "您",
    "他",
    "她",
)
# "您刚才说…", "你是说…", "您骂我…": the words that follow are the debtor's. Not after
# 跟/和/给/对 ("我跟你说" is the agent speaking).
_ZH_REPORTING = re.compile(
    r"(?<![跟和给对同告])(你|您)们?(刚才|刚刚|之前|一直|老是|是不是|是|也|不是)?"
    r"(说|讲|骂|问|的意思是)"
)

_EN_NEGATORS = frozenset(
    _words(
        "not no never neither nor nobody nothing cannot dont doesnt didnt wont cant isnt "
        "arent wasnt werent"
    )
)
_EN_CLAUSE_WORDS = frozenset(
    _words("if unless but otherwise or then because so until when i we you they he she")
)
_EN_REPORTING = tuple(
    f" {marker} "
    for marker in (
        "you said",
        "you say",
        "you are saying",
        "you were saying",
        "you told me",
        "you called me",
        "you mentioned",
        "you claim",
        "you claimed",
        "you keep saying",
        "you asked",
    )
)
_ZH_WINDOW = 8  # characters: negation sits right before the verb in Chinese
_EN_WINDOW = 4  # words: "we will not", "i am never going to"
_REPORT_WINDOW_ZH = 12
_REPORT_WINDOW_EN = 8

_QUOTE_PAIRS = (("“", "”"), ("「", "」"), ("『", "』"), ("‘", "’"))


def _clause_before(text: str, start: int, width: int) -> str:
    window = text[max(0, start - width) : start]
    cut = 0
    for m in _CLAUSE_END.finditer(window):
        cut = m.end()
    return window[cut:]


def _zh_negators(text: str) -> int:
    for word in _ZH_NOT_NEGATION:
        text = text.replace(word, "_" * len(word))
    return sum(text.count(n) for n in _ZH_NEGATORS)


def _en_words(text: str) -> list[str]:
    words: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.lastgroup == "word":
            words.extend(word_forms(m.group()))
        elif m.lastgroup == "num":
            words.append(m.group())
    return words


def is_negated(tokens: Tokens, hit: Hit, phrase: Phrase) -> bool:
    """The match is denied in its own clause ("我们不是公安", "we will never sue you").

    Two places count: a negator in the few words before the match, after the last
    clause boundary or subject (so 不还钱就去你单位闹 and "if you don't pay we
    will sue you" are still threats), and a
    negator inside a fuzzy match that the phrase itself does not have ("I am not
    from the police" against "I am from the police").
    """
    start, end = hit.char_span(tokens)
    text = tokens.text
    if phrase.language == "zh":
        if _zh_negators(text[start:end]) > _zh_negators(normalise_text(phrase.text).text):
            return True
        if text.startswith(_ZH_CLAUSE_WORDS, start):  # the match opens its own clause
            return False
        window = _clause_before(text, start, _ZH_WINDOW)
        cut = max((window.rfind(w) + len(w) for w in _ZH_CLAUSE_WORDS if w in window), default=0)
        return _zh_negators(window[cut:]) > 0
    inside = sum(1 for key in tokens.keys[hit.first : hit.last] if key & _EN_NEGATORS)
    if inside > sum(1 for key in phrase.keys if key & _EN_NEGATORS):
        return True
    if tokens.keys[hit.first] & _EN_CLAUSE_WORDS:  # "...pay we will sue you": a new clause
        return False
    words = _en_words(_clause_before(text, start, 200))[-_EN_WINDOW:]
    cut = max((i + 1 for i, w in enumerate(words) if w in _EN_CLAUSE_WORDS), default=0)
    return any(w in _EN_NEGATORS for w in words[cut:])


def _inside_quotes(text: str, start: int, end: int) -> bool:
    before, after = text[:start], text[end:]
    if before.count('"') % 2 == 1 and '"' in after:
        return True
    return any(
        before.rfind(o) > before.rfind(c) and c in after for o, c in _QUOTE_PAIRS if o in before
    )


def is_reported(tokens: Tokens, hit: Hit, language: str) -> bool:
    """The words are someone else's: in quotation marks, or after "you said" / "您刚才说".

    Agents read complaints back ("您说我们要去您单位闹，我们不会这样做"); the
    banned words are then the debtor's, not the agent's.
    """
    start, end = hit.char_span(tokens)
    text = tokens.text
    if _inside_quotes(text, start, end):
        return True
    if language == "zh":
        return _ZH_REPORTING.search(_clause_before(text, start, _REPORT_WINDOW_ZH)) is not None
    words = " ".join(_en_words(_clause_before(text, start, 300))[-_REPORT_WINDOW_EN:])
    return any(marker in f" {words} " for marker in _EN_REPORTING)


def negator_count(text: str, language: str) -> int:
    """How many negators a whole sentence holds, by the rules `is_negated` reads them with.

    Meaning-based detection has no matched span to look before: it compares the
    sentence with its nearest example instead, so "I am not calling from the
    police" is denied where "I am calling from the police" is not, while a
    threat example that itself says "if you don't pay" keeps its negator.
    """
    if language == "zh":
        return _zh_negators(normalise_text(text).text)
    return sum(1 for w in _en_words(text) if w in _EN_NEGATORS)


def reports_speech(text: str, language: str) -> bool:
    """The sentence quotes or reads back someone else's words ("you said we'd sue you")."""
    if '"' in text or any(o in text for o, _ in _QUOTE_PAIRS):
        return True
    if language == "zh":
        return _ZH_REPORTING.search(normalise_text(text).text) is not None
    words = " ".join(_en_words(text))
    return any(marker in f" {words} " for marker in _EN_REPORTING)

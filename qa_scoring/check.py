"""Checking one transcript against one rule pack: the entry point of `dialguard qa check`.

The input is the JSON `dialguard transcribe FILE --json` prints (see
`transcribe.result.Transcript.to_json`), read from a file or already parsed, or
a `Transcript` itself, as the QA worker and a recording given to `qa check`
have it: that one is read directly, never printed to JSON and parsed back.
Either is validated here, segment by segment, with the same checks and the
same messages, so a hand-edited or truncated file, or a malformed stored
segment, is refused with the segment and field named instead of being scored
as a silent, perfect call.

Besides the rule flags, the result carries the call's conduct metrics
(`qa_scoring.metrics`) and their flags; these are reported beside the score,
not in it. Shouting needs the audio, so it is measured only when the call's
WAV is given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_scoring.errors import TranscriptError
from qa_scoring.loudness import LoudnessError, wav_loudness
from qa_scoring.metrics import (
    DEFAULT_THRESHOLDS,
    CallMetrics,
    MetricFlag,
    Thresholds,
    compute_metrics,
    metric_flags,
)
from qa_scoring.pack import Pack, load_pack
from qa_scoring.rules import AGENT, DEBTOR, CallText, Evaluation, TimedWord, Utterance, evaluate
from qa_scoring.score import CheckResult, compute_score
from transcribe.phrases import HAN
from transcribe.result import Transcript

if TYPE_CHECKING:
    from qa_scoring.embedding import Embedder

__all__ = [
    "CheckResult",
    "MeasuredCheckResult",
    "check_transcript",
    "load_pack",
    "load_transcript_json",
]

_HINT = "give the JSON that `dialguard transcribe FILE --json` prints"
_HAN = re.compile(f"[{HAN}]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class MeasuredCheckResult(CheckResult):
    """A check result with the call's metrics: the JSON gains "metrics" and "metric_flags".

    A subclass rather than new fields on `CheckResult`, so the score's own
    shape (`score`, `flags`, `missing`, `warnings`) stays exactly what the
    API and other readers already rely on.
    """

    metrics: CallMetrics = field(default_factory=CallMetrics)
    metric_flags: tuple[MetricFlag, ...] = ()

    def to_json(self) -> dict[str, Any]:
        result = super().to_json()
        result["metrics"] = self.metrics.to_json()
        result["metric_flags"] = [f.to_json() for f in self.metric_flags]
        return result


@dataclass(frozen=True)
class _Call:
    segments: Sequence[Utterance]


def load_transcript_json(path: str | Path) -> dict[str, Any]:
    """Read and validate a transcript file; returns the parsed JSON."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TranscriptError(f"transcript {source} does not exist", hint=_HINT) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"cannot read transcript {source}: {exc}", hint=_HINT) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(
            f"{source.name} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}",
            hint=_HINT,
        ) from exc
    if not isinstance(data, dict):
        raise TranscriptError(f"{source.name}: expected a JSON object, not {type(data).__name__}")
    parse_transcript(data, source.name)
    return data


def _number(
    value: object, where: str, name: str, low: float = 0.0, high: float = math.inf
) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        bounds = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise TranscriptError(f"{where}: '{name}' must be a number {bounds}, not {value!r}", _HINT)
    return float(value)


def _word(at: str, start: object, end: object, word: object, probability: object) -> TimedWord:
    if not isinstance(word, str):
        raise TranscriptError(f"{at}: 'word' must be text, not {word!r}", _HINT)
    begins = _number(start, at, "start")
    ends = _number(end, at, "end")
    heard = _number(probability, at, "probability", 0.0, 1.0)
    return TimedWord(begins, max(begins, ends), word, heard)


def _words(raw: object, where: str) -> tuple[TimedWord, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TranscriptError(f"{where}: 'words' must be a list, not {raw!r}", _HINT)
    words: list[TimedWord] = []
    for j, item in enumerate(raw):
        at = f"{where} word {j}"
        if not isinstance(item, dict):
            raise TranscriptError(f"{at}: expected an object, not {item!r}", _HINT)
        for key in ("start", "end", "word", "probability"):
            if key not in item:
                raise TranscriptError(f"{at}: missing '{key}'", _HINT)
        words.append(_word(at, item["start"], item["end"], item["word"], item["probability"]))
    return tuple(words)


def _segment(
    where: str, start: object, end: object, speaker: object, text: object
) -> tuple[float, float, str, str]:
    """A segment's times, speaker and text, checked; errors name the segment and field."""
    begins = _number(start, where, "start")
    ends = _number(end, where, "end")
    if ends < begins:
        raise TranscriptError(f"{where}: ends ({ends:g} s) before it starts ({begins:g} s)", _HINT)
    if speaker not in (AGENT, DEBTOR):
        raise TranscriptError(
            f"{where}: 'speaker' must be {AGENT} or {DEBTOR}, not {speaker!r}", _HINT
        )
    if not isinstance(text, str):
        raise TranscriptError(f"{where}: 'text' must be text, not {text!r}", _HINT)
    return begins, ends, str(speaker), text


def _confidence(where: str, confidence: object, words: Sequence[TimedWord]) -> float:
    if confidence is not None:
        return _number(confidence, where, "confidence", 0.0, 1.0)
    if words:
        return sum(w.probability for w in words) / len(words)
    # A transcript typed or corrected by a person carries no confidence: it is certain.
    return 1.0


def parse_transcript(data: Mapping[str, Any], source: str = "transcript") -> list[Utterance]:
    """The segments of a transcript JSON, validated; errors name the segment and field."""
    if not isinstance(data, Mapping):
        raise TranscriptError(f"{source}: expected a JSON object, not {type(data).__name__}", _HINT)
    segments = data.get("segments")
    if not isinstance(segments, list):
        raise TranscriptError(f"{source}: no 'segments' list (got {segments!r})", _HINT)
    utterances: list[Utterance] = []
    for i, raw in enumerate(segments):
        where = f"{source} segment {i}"
        if not isinstance(raw, dict):
            raise TranscriptError(f"{where}: expected an object, not {raw!r}", _HINT)
        for key in ("start", "end", "speaker", "text"):
            if key not in raw:
                raise TranscriptError(f"{where}: missing '{key}'", _HINT)
        start, end, speaker, text = _segment(
            where, raw["start"], raw["end"], raw["speaker"], raw["text"]
        )
        words = _words(raw.get("words"), where)
        confidence = _confidence(where, raw.get("confidence"), words)
        utterances.append(Utterance(start, end, speaker, text, confidence, words))
    return utterances


def transcript_utterances(transcript: Transcript) -> list[Utterance]:
    """The segments of a `Transcript`, read directly and checked as `parse_transcript` checks.

    Times are taken to the hundredth of a second and the confidence to the
    thousandth, as the printed JSON carries them, so a call scores the same
    whether QA is given the transcript or the file `dialguard transcribe
    --json` wrote from it.
    """
    utterances: list[Utterance] = []
    for i, segment in enumerate(transcript.segments):
        where = f"transcript segment {i}"
        start, end, speaker, text = _segment(
            where,
            round(segment.start, 2),
            round(segment.end, 2),
            segment.speaker.value,
            segment.text,
        )
        words = tuple(
            _word(f"{where} word {j}", w.start, w.end, w.word, w.probability)
            for j, w in enumerate(segment.words)
        )
        confidence = _confidence(where, round(segment.confidence, 3), words)
        utterances.append(Utterance(start, end, speaker, text, confidence, words))
    return utterances


#: Silence between two words of one party, in seconds, that ends a turn (see split_turns).
TURN_GAP = 1.5


def split_turns(utterance: Utterance, gap: float = TURN_GAP) -> list[Utterance]:
    """One segment cut where its words fall silent for `gap` seconds or more.

    Whisper, with voice activity detection, decodes one channel's speech with
    the silences cut out, so a debtor's "This is Olivia." and, 20 s later,
    "Let's do a plan." can come back as one segment timed from the first. The
    rules read turns: a confirmation is a short answer on its own, the debt
    may only follow it, identity must come in the first 30 s. The words'
    timestamps show where the party really stopped. A segment whose words
    cannot be found in its text (edited, redacted) is kept whole.
    """
    words = utterance.words
    if len(words) < 2:
        return [utterance]
    cursor = 0
    starts: list[int] = []
    for word in words:
        token = word.word.strip()
        at = utterance.text.find(token, cursor) if token else cursor
        if at < 0:
            return [utterance]
        starts.append(at)
        cursor = at + len(token)
    cuts = [i for i in range(1, len(words)) if words[i].start - words[i - 1].end >= gap]
    if not cuts:
        return [utterance]
    pieces: list[Utterance] = []
    for first, last in zip([0, *cuts], [*cuts, len(words)], strict=True):
        end = starts[last] if last < len(words) else len(utterance.text)
        part = words[first:last]
        pieces.append(
            Utterance(
                start=part[0].start,
                end=max(part[-1].end, part[0].start),
                speaker=utterance.speaker,
                text=utterance.text[starts[first] : end].strip(),
                confidence=sum(w.probability for w in part) / len(part),
                words=part,
            )
        )
    return pieces


def _language_of(utterances: list[Utterance]) -> str | None:
    text = "".join(u.text for u in utterances)
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if han + latin == 0:
        return None
    # A Chinese call still spells out APP, ID, VIP: a character counts for a word's letters.
    return "zh" if han * 3 >= latin else "en"


def _language_warnings(declared: object, utterances: list[Utterance], pack: Pack) -> list[str]:
    warnings: list[str] = []
    if isinstance(declared, str) and declared.strip():
        code = re.split(r"[-_]", declared.strip().lower())[0]
        code = {"chinese": "zh", "cmn": "zh", "english": "en", "eng": "en"}.get(code, code)
        if code != pack.language:
            warnings.append(
                f"transcript language is '{declared}' but pack '{pack.name}' is for "
                f"'{pack.language}': its wording will mostly not match, so missing flags "
                "prove nothing and required items will read as missing"
            )
            return warnings
    heard = _language_of(utterances)
    if heard is not None and heard != pack.language:
        warnings.append(
            f"the transcript text reads as '{heard}' but pack '{pack.name}' is for "
            f"'{pack.language}': check the pack or the transcription language"
        )
    return warnings


def _with_meaning(
    call: CallText,
    pack: Pack,
    evaluation: Evaluation,
    embedder: Embedder,
) -> Evaluation:
    from qa_scoring.semantic import semantic_flags

    bank = embedder.bank(pack)
    if bank is None:
        return evaluation
    docs = [i for i, u in enumerate(call.utterances) if u.speaker == AGENT and u.text.strip()]
    matrix = embedder.embed([call.normalised[i].text for i in docs])
    vectors = {doc: matrix[n] for n, doc in enumerate(docs)}
    extra = semantic_flags(call, vectors, bank, pack, evaluation.flags)
    flags = sorted((*evaluation.flags, *extra), key=lambda f: (f.start, -f.severity, f.rule))
    return Evaluation(tuple(flags), evaluation.missing, evaluation.warnings)


def check_transcript(
    transcript_json: Mapping[str, Any] | Transcript,
    pack: Pack | str | Path,
    *,
    listen_below: float | None = None,
    audio: str | Path | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    embedder: Embedder | None = None,
) -> MeasuredCheckResult:
    """Score one call: flags (time-ordered), missing required items, warnings, metrics.

    `pack` is a loaded Pack, a shipped pack name ("cn-collections") or a YAML
    path; `listen_below` overrides the pack's needs-listening threshold.
    `audio` is the call's recording: a WAV is measured for shouting (other
    formats are not, and say so in the warnings, as does a WAV that cannot be
    read: the words can still be checked without it). With an `embedder` and a
    pack that has example sets, the agent's sentences are also judged by
    meaning (`qa_scoring.semantic`).
    """
    if not isinstance(pack, Pack):
        pack = load_pack(pack)
    declared: object
    if isinstance(transcript_json, Transcript):
        utterances = transcript_utterances(transcript_json)
        declared = transcript_json.language
    elif isinstance(transcript_json, Mapping):
        utterances = parse_transcript(transcript_json)
        declared = transcript_json.get("language")
    else:
        raise TranscriptError(
            f"expected transcript JSON, not {type(transcript_json).__name__}", _HINT
        )
    warnings = _language_warnings(declared, utterances, pack)
    if not any(u.text.strip() for u in utterances):
        warnings.append("the transcript has no speech: every required item is missing")
    turns = [turn for u in utterances for turn in split_turns(u)]
    call = CallText(turns, pack.language)
    evaluation = evaluate(call, pack, listen_below)
    if embedder is not None:
        evaluation = _with_meaning(call, pack, evaluation, embedder)
    loudness: list[list[float]] | None = None
    if audio is not None:
        if Path(audio).suffix.lower() == ".wav":
            try:
                loudness = wav_loudness(audio)
            except LoudnessError as exc:
                warnings.append(f"shouting not measured: {exc}")
        else:
            warnings.append(f"shouting not measured: {Path(audio).name} is not a WAV")
    metrics = compute_metrics(_Call(utterances), loudness=loudness, thresholds=thresholds)
    return MeasuredCheckResult(
        score=compute_score(evaluation.flags, evaluation.missing),
        flags=evaluation.flags,
        missing=evaluation.missing,
        warnings=(*warnings, *evaluation.warnings),
        pack=pack.name,
        metrics=metrics,
        metric_flags=tuple(metric_flags(metrics, thresholds)),
    )

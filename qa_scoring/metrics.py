"""Call metrics: how a call was conducted, not what was said in it.

Banned wording is not the only way an agent breaks the rules: talking over the
debtor, lecturing without letting them answer, rattling off terms too fast to
follow, shouting, leaving the line dead, or calling the same person again and
again are all conduct a reviewer is asked to catch. These numbers come from the
segment times of a transcript (and, for shouting, the loudness of the agent's
channel), so they cost nothing beyond the transcription already done.

This module is pure: no files, no clock, no database. `qa_scoring.loudness`
reads a WAV into the per-second loudness `compute_metrics` takes, and the
caller supplies the dates of earlier calls, so everything here is tested with
hand-built transcripts.

Metrics are reported separately from rule flags and do not change the score:
thresholds for conduct differ between centres and need calibrating on their
own calls before they should cost an agent points.

Times are measured on what was spoken, not on segment bounds: Whisper pads a
segment with the silence around it, so where a segment has word timings, its
speech runs from the first word's start to the last word's end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Protocol

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CallMetrics",
    "MetricFlag",
    "SpeakerMetrics",
    "Thresholds",
    "calls_in_window",
    "compute_metrics",
    "metric_flags",
]

AGENT = "agent"
DEBTOR = "debtor"

# Han (with extensions A and compatibility), kana and Hangul: scripts written without spaces,
# where a speaker's pace is counted in characters because there are no words to count.
_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff]"
)
_LETTER = re.compile(r"[^\W\d_]")
# "don't", "twenty-five" and "500" are one word each; punctuation is none.
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


class WordLike(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


class SegmentLike(Protocol):
    """A transcript segment: `transcribe.result.Segment` or `qa_scoring.rules.Utterance`."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def speaker(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def words(self) -> Sequence[WordLike]: ...


class TranscriptLike(Protocol):
    """What metrics need of `transcribe.result.Transcript`: its segments."""

    @property
    def segments(self) -> Sequence[SegmentLike]: ...


@dataclass(frozen=True)
class Thresholds:
    """Where conduct becomes worth a reviewer's attention; every default is a starting point.

    - `max_agent_talk_ratio` 0.8: an agent holding the line for more than four
      fifths of the talk is lecturing, not negotiating; judged only once the
      two parties together spoke `min_talk_for_ratio_s` (60 s), since a
      greeting and a hang-up is no conversation to dominate.
    - `interruption_overlap_s` 1.0: a party starts speaking while the other's
      speech still has more than this to run. Shorter overlaps are back-channel
      ("嗯", "right") and the slack of ASR timings, not cutting someone off.
    - `max_agent_interruptions` 3: more than this many in one call is a habit.
    - `long_silence_s` 30: a gap with nobody speaking longer than this is a
      dead line or a debtor left on hold (timed between the first and the last
      speech, so ringing before and hang-up after do not count).
    - `max_agent_chars_per_min` 300 and `max_agent_words_per_min` 200:
      conversational Mandarin commonly runs roughly 180-280 characters a
      minute and English 120-170 words; well above that, terms and rights
      are read too fast to be understood. Judged only on `min_rate_speech_s`
      (10 s) of the agent's speech in that script, since a few quick words
      say nothing about pace.
    - `shouting_dbfs` -6 and `min_shout_s` 2: per-second RMS loudness of the
      agent's channel (a full-scale sine reads -3 dBFS); speech at a normal
      level sits far below, so 2 or more consecutive seconds above it is a
      raised voice, while a single loud second is more often a knock or a
      cough. Calibrate on your own recordings: gain differs between trunks.
    - `max_calls_in_window` 7 within `call_window` 7 days: the US CFPB's
      Regulation F presumes more than seven calls in seven days to one debtor
      to be harassment; Chinese agencies' standards set their own daily limits.
    """

    max_agent_talk_ratio: float = 0.8
    min_talk_for_ratio_s: float = 60.0
    interruption_overlap_s: float = 1.0
    max_agent_interruptions: int = 3
    long_silence_s: float = 30.0
    max_agent_chars_per_min: float = 300.0
    max_agent_words_per_min: float = 200.0
    min_rate_speech_s: float = 10.0
    shouting_dbfs: float = -6.0
    min_shout_s: int = 2
    max_calls_in_window: int = 7
    call_window: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if not 0.0 < self.max_agent_talk_ratio <= 1.0:
            raise ValueError(
                f"max_agent_talk_ratio must be in (0, 1], not {self.max_agent_talk_ratio}"
            )
        for name in (
            "min_talk_for_ratio_s",
            "interruption_overlap_s",
            "max_agent_interruptions",
            "min_rate_speech_s",
            "max_calls_in_window",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        for name in (
            "long_silence_s",
            "max_agent_chars_per_min",
            "max_agent_words_per_min",
            "min_shout_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if self.call_window <= timedelta(0):
            raise ValueError(f"call_window must be positive, not {self.call_window}")


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class SpeakerMetrics:
    """One party's share of a call.

    Rates are kept per script because characters and words are not the same
    unit: a Chinese call quoting an English product name must not have its
    pace diluted by words, nor an English call's by a Chinese name. A rate is
    None when the party said nothing in that script.
    """

    talk_s: float = 0.0
    interruptions: int = 0  # times this party cut into the other's speech
    chars_per_min: float | None = None
    words_per_min: float | None = None
    cjk_speech_s: float = 0.0  # the speech time the character rate rests on
    word_speech_s: float = 0.0  # the speech time the word rate rests on

    def to_json(self) -> dict[str, Any]:
        return {
            "talk_seconds": round(self.talk_s, 2),
            "interruptions": self.interruptions,
            "chars_per_min": _round(self.chars_per_min, 1),
            "words_per_min": _round(self.words_per_min, 1),
        }


@dataclass(frozen=True)
class CallMetrics:
    """The conduct of one call; None where it could not be measured.

    `agent_talk_ratio` is None when only one party was heard (a mono
    recording, a voicemail): a monologue is not a conversation to dominate.
    `shouting_s`/`longest_shout_s` are None without the call's audio, and
    `calls_in_window` without the debtor's call history.
    """

    agent: SpeakerMetrics = field(default_factory=SpeakerMetrics)
    debtor: SpeakerMetrics = field(default_factory=SpeakerMetrics)
    agent_talk_ratio: float | None = None
    longest_silence_s: float = 0.0
    long_silences: int = 0
    shouting_s: int | None = None
    longest_shout_s: int | None = None
    calls_in_window: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_talk_ratio": _round(self.agent_talk_ratio, 3),
            "agent": self.agent.to_json(),
            "debtor": self.debtor.to_json(),
            "longest_silence": round(self.longest_silence_s, 2),
            "long_silences": self.long_silences,
            "shouting_seconds": self.shouting_s,
            "longest_shout_seconds": self.longest_shout_s,
            "calls_in_window": self.calls_in_window,
        }


@dataclass(frozen=True)
class MetricFlag:
    """A metric past its threshold: what was measured, against what, in words."""

    code: str
    value: float
    threshold: float
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _speech_span(segment: SegmentLike) -> tuple[float, float]:
    """From the first word to the last: Whisper's segment bounds include the pauses around."""
    words = segment.words
    if words:
        first = min(w.start for w in words)
        last = max(w.end for w in words)
        if last > first:
            return first, last
    return segment.start, segment.end


def _merged(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans joined, so overlapping segments are not counted twice."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class _Speech:
    start: float
    end: float
    speaker: str
    text: str


def _speech(segments: Iterable[SegmentLike]) -> list[_Speech]:
    """Segments with something said, by when they start; blank segments are silence."""
    found: list[_Speech] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        speaker = str(segment.speaker)  # `Speaker` is a StrEnum: str() is its value
        start, end = _speech_span(segment)
        if end > start and speaker in (AGENT, DEBTOR):
            found.append(_Speech(start, end, speaker, segment.text))
    found.sort(key=lambda s: (s.start, s.end))
    return found


def _interruptions(speech: list[_Speech], overlap_s: float) -> dict[str, int]:
    """Per interrupter: segments that began while the other party had more than `overlap_s` left.

    A segment counts once however many of the other's segments it cut into;
    two parties starting at the same instant is a collision, not an interruption.
    """
    counts = {AGENT: 0, DEBTOR: 0}
    running_end = {AGENT: -math.inf, DEBTOR: -math.inf}  # of segments started strictly earlier
    seen = 0
    for current in speech:
        while seen < len(speech) and speech[seen].start < current.start:
            earlier = speech[seen]
            running_end[earlier.speaker] = max(running_end[earlier.speaker], earlier.end)
            seen += 1
        other = DEBTOR if current.speaker == AGENT else AGENT
        if running_end[other] - current.start > overlap_s:
            counts[current.speaker] += 1
    return counts


def _rate_units(text: str) -> tuple[int, int]:
    """(CJK characters, words) said in a segment; a segment is counted in one script only.

    Like the language check in `qa_scoring.check`, a character weighs as much
    as three letters, so "请在APP上还款" is Chinese and "I called Mr 王" English.
    """
    cjk = len(_CJK.findall(text))
    letters = len(_LETTER.findall(_CJK.sub("", text)))
    if cjk and cjk * 3 >= letters:
        return cjk, 0
    return 0, len(_WORD.findall(text))  # a Chinese name written in one run is one word


def _speaker_metrics(speech: list[_Speech], speaker: str, interruptions: int) -> SpeakerMetrics:
    own = [s for s in speech if s.speaker == speaker]
    chars = words = 0
    cjk_s = word_s = 0.0
    for item in own:
        c, w = _rate_units(item.text)
        if c:
            chars += c
            cjk_s += item.end - item.start
        elif w:
            words += w
            word_s += item.end - item.start
    talk = sum(end - start for start, end in _merged((s.start, s.end) for s in own))
    return SpeakerMetrics(
        talk_s=talk,
        interruptions=interruptions,
        chars_per_min=chars * 60.0 / cjk_s if cjk_s > 0 else None,
        words_per_min=words * 60.0 / word_s if word_s > 0 else None,
        cjk_speech_s=cjk_s,
        word_speech_s=word_s,
    )


def _shouting(loudness: Sequence[Sequence[float]], threshold_dbfs: float) -> tuple[int, int]:
    """(seconds above the threshold, longest run of them) on the agent's channel (the first)."""
    if not loudness:
        return 0, 0
    total = longest = run = 0
    for level in loudness[0]:
        if level > threshold_dbfs:
            total += 1
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return total, longest


def compute_metrics(
    transcript: TranscriptLike,
    *,
    loudness: Sequence[Sequence[float]] | None = None,
    calls_in_window: int | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CallMetrics:
    """Measure one call.

    `loudness` is per channel (agent first, as `qa_scoring.loudness.wav_loudness`
    returns it) a list of per-second dBFS values; without it shouting is not
    measured. `calls_in_window` is what `calls_in_window()` counted for this
    debtor, passed through so the flag can judge it with the other metrics.
    """
    speech = _speech(transcript.segments)
    interruptions = _interruptions(speech, thresholds.interruption_overlap_s)
    agent = _speaker_metrics(speech, AGENT, interruptions[AGENT])
    debtor = _speaker_metrics(speech, DEBTOR, interruptions[DEBTOR])
    both = agent.talk_s + debtor.talk_s
    ratio = agent.talk_s / both if agent.talk_s > 0 and debtor.talk_s > 0 else None
    heard = _merged((s.start, s.end) for s in speech)
    gaps = [later[0] - earlier[1] for earlier, later in pairwise(heard)]
    shouting = _shouting(loudness, thresholds.shouting_dbfs) if loudness is not None else None
    return CallMetrics(
        agent=agent,
        debtor=debtor,
        agent_talk_ratio=ratio,
        longest_silence_s=max(gaps, default=0.0),
        long_silences=sum(1 for gap in gaps if gap > thresholds.long_silence_s),
        shouting_s=shouting[0] if shouting else None,
        longest_shout_s=shouting[1] if shouting else None,
        calls_in_window=calls_in_window,
    )


def calls_in_window(
    earlier: Iterable[datetime], at: datetime, window: timedelta = DEFAULT_THRESHOLDS.call_window
) -> int:
    """Calls to one debtor in the `window` ending at this call's time `at`, this call included.

    Calls after `at` are not counted: a call re-checked later must be judged by
    what had happened when it was made. Datetimes must all be aware or all be
    naive (Python refuses to compare the two).
    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, not {window}")
    return 1 + sum(1 for when in earlier if at - window < when < at)


def metric_flags(
    metrics: CallMetrics, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> list[MetricFlag]:
    """The metrics past their thresholds, each with a message a reviewer can act on."""
    flags: list[MetricFlag] = []
    agent, debtor = metrics.agent, metrics.debtor
    ratio = metrics.agent_talk_ratio
    if (
        ratio is not None
        and ratio > thresholds.max_agent_talk_ratio
        and agent.talk_s + debtor.talk_s >= thresholds.min_talk_for_ratio_s
    ):
        flags.append(
            MetricFlag(
                "agent_dominates",
                round(ratio, 3),
                thresholds.max_agent_talk_ratio,
                f"the agent did {ratio:.0%} of the talking "
                f"(over {thresholds.max_agent_talk_ratio:.0%}): the debtor hardly had a say",
            )
        )
    if agent.interruptions > thresholds.max_agent_interruptions:
        flags.append(
            MetricFlag(
                "agent_interrupts",
                agent.interruptions,
                thresholds.max_agent_interruptions,
                f"the agent cut into the debtor's speech {agent.interruptions} times "
                f"(more than {thresholds.max_agent_interruptions})",
            )
        )
    paces = (
        (agent.chars_per_min, agent.cjk_speech_s, thresholds.max_agent_chars_per_min, "characters"),
        (agent.words_per_min, agent.word_speech_s, thresholds.max_agent_words_per_min, "words"),
    )
    for rate, spoken_s, limit, unit in paces:
        if rate is not None and spoken_s >= thresholds.min_rate_speech_s and rate > limit:
            flags.append(
                MetricFlag(
                    "agent_speaks_fast",
                    round(rate, 1),
                    limit,
                    f"the agent spoke {rate:.0f} {unit} a minute (over {limit:g}): "
                    "too fast to follow",
                )
            )
    if metrics.longest_shout_s is not None and metrics.longest_shout_s >= thresholds.min_shout_s:
        flags.append(
            MetricFlag(
                "agent_shouting",
                metrics.longest_shout_s,
                thresholds.min_shout_s,
                f"the agent's voice stayed above {thresholds.shouting_dbfs:g} dBFS for "
                f"{metrics.longest_shout_s} s in a row ({metrics.shouting_s} s in all): "
                "listen for shouting",
            )
        )
    if metrics.longest_silence_s > thresholds.long_silence_s:
        flags.append(
            MetricFlag(
                "long_silence",
                round(metrics.longest_silence_s, 2),
                thresholds.long_silence_s,
                f"{metrics.long_silences} silence(s) over {thresholds.long_silence_s:g} s, "
                f"the longest {metrics.longest_silence_s:.0f} s: a dead line or a debtor on hold",
            )
        )
    if (
        metrics.calls_in_window is not None
        and metrics.calls_in_window > thresholds.max_calls_in_window
    ):
        days = thresholds.call_window / timedelta(days=1)
        flags.append(
            MetricFlag(
                "frequent_calls",
                metrics.calls_in_window,
                thresholds.max_calls_in_window,
                f"{metrics.calls_in_window} calls to this debtor within {days:g} days "
                f"(more than {thresholds.max_calls_in_window}): presumed harassment",
            )
        )
    return flags

"""Scores, the result shape, and what happens with bad or unexpected transcripts."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from qa_scoring.check import (
    check_transcript,
    load_transcript_json,
    parse_transcript,
    transcript_utterances,
)
from qa_scoring.errors import QaError, TranscriptError
from qa_scoring.pack import load_pack
from qa_scoring.rules import Flag, Missing
from qa_scoring.score import MISSING_WEIGHT, WEIGHTS, CheckResult, compute_score

DATA = Path(__file__).parents[1] / "data" / "qa"


def flag(rule: str, severity: int, needs_listening: bool = False) -> Flag:
    return Flag(
        rule=rule,
        category="c",
        severity=severity,
        speaker="agent",
        start=1.0,
        end=2.0,
        text="t",
        matched="m",
        confidence=0.3 if needs_listening else 0.9,
        needs_listening=needs_listening,
    )


def missing(rule: str) -> Missing:
    return Missing(rule, rule)


@pytest.mark.parametrize(
    ("flags", "missing_items", "score", "why"),
    [
        ([], [], 100, "a clean call"),
        ([flag("a", 4)], [], 60, "one level-4 violation"),
        ([flag("a", 3)], [], 75, "level 3"),
        ([flag("a", 2)], [], 90, "level 2"),
        ([flag("a", 1)], [], 95, "level 1"),
        ([], [missing("identity")], 90, "one required item missing"),
        ([], [missing("a"), missing("b"), missing("c")], 70, "everything missing"),
        ([flag("a", 4, needs_listening=True)], [], 100, "unproven flags cost nothing"),
        ([flag("a", 4), flag("a", 4)], [], 60, "a rule is penalised once per call"),
        ([flag("a", 4), flag("b", 3)], [], 35, "different rules add up"),
        ([flag("a", 4), flag("b", 4), flag("c", 4)], [missing("x")], 0, "never below 0"),
    ],
)
def test_score(flags: list[Flag], missing_items: list[Missing], score: int, why: str) -> None:
    assert compute_score(flags, missing_items) == score, why


def test_weights_are_the_documented_ones() -> None:
    assert WEIGHTS == {4: 40, 3: 25, 2: 10, 1: 5}
    assert MISSING_WEIGHT == 10


def test_result_json_shape() -> None:
    result = CheckResult(score=50, flags=(flag("a", 4),), missing=(missing("identity"),))
    data = result.to_json()
    assert list(data) == ["score", "flags", "missing"]
    assert list(data["flags"][0])[:7] == [
        "rule",
        "category",
        "severity",
        "speaker",
        "start",
        "end",
        "text",
    ]
    assert data["missing"] == [
        {"rule": "identity", "category": "identity", "description": "", "within_seconds": None}
    ]
    json.dumps(data)  # plain JSON all the way down
    warned = CheckResult(score=100, flags=(), missing=(), warnings=("odd",)).to_json()
    assert warned["warnings"] == ["odd"]


def call(*segments: dict[str, Any], language: str = "zh") -> dict[str, Any]:
    return {"language": language, "duration": 60.0, "model": "base", "segments": list(segments)}


def seg(text: str, speaker: str = "agent", start: float = 1.0, **extra: Any) -> dict[str, Any]:
    return {
        "start": start,
        "end": start + 3,
        "speaker": speaker,
        "text": text,
        "confidence": 0.9,
    } | extra


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"segments": "none"}, "no 'segments' list"),
        ({"language": "zh"}, "no 'segments' list"),
        (
            call({"start": 1, "end": 2, "text": "x", "confidence": 0.9}),
            "segment 0: missing 'speaker'",
        ),
        (
            call(seg("x"), seg("y", speaker="customer")),
            "segment 1: 'speaker' must be agent or debtor, not 'customer'",
        ),
        (
            call(seg("x") | {"start": "abc"}),
            "segment 0: 'start' must be a number at least 0, not 'abc'",
        ),
        (call(seg("x") | {"end": 0.5}), "segment 0: ends (0.5 s) before it starts (1 s)"),
        (
            call(seg("x", confidence=1.7)),
            "segment 0: 'confidence' must be a number from 0 to 1, not 1.7",
        ),
        (
            call(seg("x", words=[{"start": 1, "end": 2, "word": "x", "probability": 2}])),
            "segment 0 word 0: 'probability' must be a number from 0 to 1, not 2",
        ),
        (
            call(seg("x", words=[{"start": 1, "end": 2, "word": "x"}])),
            "segment 0 word 0: missing 'probability'",
        ),
        (call(seg("x") | {"text": None}), "segment 0: 'text' must be text, not None"),
    ],
)
def test_bad_transcripts_name_segment_and_field(data: dict[str, Any], says: str) -> None:
    with pytest.raises(TranscriptError) as caught:
        check_transcript(data, "cn-collections")
    assert says in str(caught.value)
    assert "dialguard transcribe" in caught.value.hint


def test_load_transcript_json_errors(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="does not exist"):
        load_transcript_json(tmp_path / "nope.json")
    broken = tmp_path / "call.json"
    broken.write_text('{"segments": [\n  {"start": 1,}\n]}', encoding="utf-8")
    with pytest.raises(TranscriptError, match=r"call\.json line 2 column 15: not valid JSON"):
        load_transcript_json(broken)
    broken.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(QaError, match="expected a JSON object, not list"):
        load_transcript_json(broken)


def test_loads_what_transcribe_prints(tmp_path: Path) -> None:
    """The `dialguard transcribe --json` shape, with and without words."""
    from transcribe.result import Segment, Speaker, Transcript, Word

    transcript = Transcript(
        language="zh",
        duration=12.0,
        model="base",
        segments=(
            Segment(
                0.0,
                3.0,
                Speaker.AGENT,
                "你真是个废物。",
                0.9,
                (
                    Word(0.0, 1.0, "你真是", 0.9),
                    Word(1.0, 2.0, "个", 0.9),
                    Word(2.0, 3.0, "废物。", 0.4),
                ),
            ),
        ),
    )
    path = tmp_path / "t.json"
    path.write_text(json.dumps(transcript.to_json(), ensure_ascii=False), encoding="utf-8")
    plain = check_transcript(load_transcript_json(path), "cn-collections")
    assert [(f.rule, f.start, f.needs_listening) for f in plain.flags] == [
        ("insult-abuse", 0.0, False)
    ]
    with_words = check_transcript(transcript, "cn-collections")  # the object itself
    [insult] = with_words.flags
    assert (insult.start, insult.end, insult.confidence) == (2.0, 3.0, 0.4)
    assert insult.needs_listening


def test_a_transcript_object_is_read_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's path: no JSON in between, and the same result as from the printed file."""
    from transcribe.result import Segment, Speaker, Transcript, Word

    transcript = Transcript(
        language="zh",
        duration=12.0,
        model="base",
        segments=(
            Segment(0.004, 2.0, Speaker.DEBTOR, "喂，哪位？", 0.93333),
            Segment(
                2.123456,
                5.0,
                Speaker.AGENT,
                "你真是个废物。",
                0.4567,
                (Word(2.123456, 3.0, "你真是", 0.9), Word(3.0, 5.0, "个废物。", 0.4)),
            ),
        ),
    )
    printed = json.loads(json.dumps(transcript.to_json(words=True), ensure_ascii=False))

    def no_json(self: Transcript, words: bool = False) -> dict[str, Any]:
        raise AssertionError("the transcript went through JSON")

    monkeypatch.setattr(Transcript, "to_json", no_json)
    direct = check_transcript(transcript, "cn-collections")
    assert direct.to_json() == check_transcript(printed, "cn-collections").to_json()
    assert [(f.rule, f.start, f.end) for f in direct.flags] == [("insult-abuse", 3.0, 5.0)]
    read = transcript_utterances(transcript)  # to the hundredth, as printed
    assert [(u.start, u.confidence) for u in read] == [(0.0, 0.933), (2.12, 0.457)]
    broken = Transcript("zh", 12.0, "base", (Segment(3.0, 1.0, Speaker.AGENT, "您好", 0.9),))
    with pytest.raises(TranscriptError, match=r"transcript segment 0: ends \(1 s\) before"):
        check_transcript(broken, "cn-collections")


def test_confidence_defaults() -> None:
    """No confidence: the words' mean, else certain (a transcript typed by a person)."""
    [typed] = parse_transcript(call({"start": 0, "end": 1, "speaker": "agent", "text": "x"}))
    assert typed.confidence == 1.0
    worded = {
        "start": 0,
        "end": 1,
        "speaker": "agent",
        "text": "ab",
        "words": [
            {"start": 0, "end": 0.5, "word": "a", "probability": 0.2},
            {"start": 0.5, "end": 1, "word": "b", "probability": 0.6},
        ],
    }
    [heard] = parse_transcript(call(worded))
    assert heard.confidence == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("data", "pack", "warns"),
    [
        (
            call(seg("We will sue you."), language="en"),
            "cn-collections",
            "transcript language is 'en'",
        ),
        (call(seg("We will sue you."), language="zh"), "cn-collections", "reads as 'en'"),
        (
            call(seg("你真是个废物。"), language="zh"),
            "en-collections",
            "transcript language is 'zh'",
        ),
        (call(seg("您好，这里是APP客服。"), language="zh-CN"), "cn-collections", None),
        (call(seg("Hello there."), language="en"), "en-collections", None),
    ],
)
def test_language_mismatch_is_a_warning(data: dict[str, Any], pack: str, warns: str | None) -> None:
    result = check_transcript(data, pack)
    language_warnings = [w for w in result.warnings if "language" in w or "reads as" in w]
    if warns is None:
        assert language_warnings == []
    else:
        assert any(warns in w for w in language_warnings), result.warnings
        assert "warnings" in result.to_json()


def three_hour_call(language: str) -> dict[str, Any]:
    """Thousands of segments drawn from the corpus: violations, near-misses and routine talk."""
    folder = DATA / ("cn" if language == "zh" else "en")
    pool = [
        (s["speaker"], s["text"])
        for path in sorted(folder.glob("*.json"))
        for s in load_transcript_json(path)["segments"]
    ]
    rng = random.Random(7)
    segments = []
    t = 0.0
    while t < 3 * 3600:
        speaker, text = rng.choice(pool)
        segments.append(seg(text, speaker=speaker, start=t))
        t += 3.0 + rng.random()
    return call(*segments, language=language)


@pytest.mark.alone  # a time limit: measured by itself, not beside the parallel suites
@pytest.mark.parametrize(("language", "pack"), [("zh", "cn-collections"), ("en", "en-collections")])
def test_three_hour_call_takes_well_under_a_second(language: str, pack: str) -> None:
    data = three_hour_call(language)
    assert len(data["segments"]) > 2500
    loaded = load_pack(pack)
    check_transcript(data, loaded)  # warm the pinyin and word caches, as a worker would be
    started = time.process_time()  # this process's CPU: other processes' load does not count
    result = check_transcript(data, loaded)
    elapsed = time.process_time() - started
    assert result.flags
    assert elapsed < 1.0, f"{elapsed:.2f} s for {len(data['segments'])} segments"

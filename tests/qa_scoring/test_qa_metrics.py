"""Call metrics: talk ratio, interruptions, pace, silences, shouting, call frequency, flags."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa_scoring import (
    CallMetrics,
    LoudnessError,
    Thresholds,
    calls_in_window,
    check_transcript,
    compute_metrics,
    metric_flags,
    wav_loudness,
)
from qa_scoring.score import CheckResult
from tests.audio import RATE, noise, read_mono, tone, write_wav
from tests.helpers import dialguard, espeak_wav
from transcribe.result import Segment, Speaker, Transcript, Word

A, D = "agent", "debtor"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

Line = tuple[str, float, float, str]  # speaker, start, end, text


def seg(speaker: str, start: float, end: float, text: str = "你好", words: bool = False) -> Segment:
    """A segment; with words, its words share its time evenly (as the ASR reports them)."""
    timed: tuple[Word, ...] = ()
    if words:
        parts = text.split()
        step = (end - start) / len(parts)
        timed = tuple(
            Word(start + i * step, start + (i + 1) * step, w, 0.9) for i, w in enumerate(parts)
        )
    return Segment(start, end, Speaker(speaker), text, 0.9, timed)


def call(*lines: Line, segments: tuple[Segment, ...] = ()) -> Transcript:
    built = tuple(seg(*line) for line in lines) + segments
    return Transcript("zh", max((s.end for s in built), default=0.0), "test", built)


def codes(metrics: CallMetrics, thresholds: Thresholds | None = None) -> list[str]:
    return [f.code for f in metric_flags(metrics, thresholds or Thresholds())]


# --- talk time and ratio -------------------------------------------------------------


@pytest.mark.parametrize(
    ("transcript", "agent_s", "debtor_s", "ratio", "dominates", "why"),
    [
        (call(), 0.0, 0.0, None, False, "empty transcript: nothing to measure"),
        (call((A, 0, 100, "你好")), 100.0, 0.0, None, False, "one party only: no conversation"),
        (call((A, 0, 90, "你好"), (D, 90, 100, "嗯")), 90.0, 10.0, 0.9, True, "agent lectures"),
        (call((A, 0, 50, "你好"), (D, 50, 100, "嗯")), 50.0, 50.0, 0.5, False, "a fair share"),
        (call((A, 0, 8.5, "你好"), (D, 8.5, 10, "嗯")), 8.5, 1.5, 0.85, False, "too short"),
        (
            call((A, 0, 10, "你好"), (A, 5, 15, "还款"), (D, 15, 20, "好")),
            15.0,
            5.0,
            0.75,
            False,
            "overlapping segments of one party count once",
        ),
        (
            call((A, 0, 30, "你好"), (A, 30, 90, "   "), (D, 90, 100, "嗯")),
            30.0,
            10.0,
            0.75,
            False,
            "a blank segment is silence, not talk",
        ),
    ],
)
def test_talk_time_and_ratio(
    transcript: Transcript,
    agent_s: float,
    debtor_s: float,
    ratio: float | None,
    dominates: bool,
    why: str,
) -> None:
    metrics = compute_metrics(transcript)
    assert metrics.agent.talk_s == pytest.approx(agent_s), why
    assert metrics.debtor.talk_s == pytest.approx(debtor_s), why
    assert metrics.agent_talk_ratio == (None if ratio is None else pytest.approx(ratio)), why
    assert ("agent_dominates" in codes(metrics)) is dominates, why


def test_talk_is_timed_on_words_not_on_padded_segment_bounds() -> None:
    words = (Word(2.0, 3.0, "hello", 0.9), Word(3.0, 6.0, "there", 0.9))
    padded = Segment(0.0, 10.0, Speaker.AGENT, "hello there", 0.9, words)
    metrics = compute_metrics(call((D, 10, 14, "yes"), segments=(padded,)))
    assert metrics.agent.talk_s == pytest.approx(4.0)
    assert metrics.longest_silence_s == pytest.approx(4.0)  # 6 s to 10 s, not 10 s to 10 s


def test_talk_ratio_flag_carries_value_threshold_and_message() -> None:
    metrics = compute_metrics(call((A, 0, 90, "你好"), (D, 90, 100, "嗯")))
    [flag] = metric_flags(metrics)
    assert (flag.code, flag.value, flag.threshold) == ("agent_dominates", 0.9, 0.8)
    assert "90%" in flag.message


# --- interruptions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "agent", "debtor", "why"),
    [
        ([], 0, 0, "empty transcript"),
        ([(A, 0, 5, "你好"), (D, 5, 8, "嗯"), (A, 8, 12, "好")], 0, 0, "clean turns"),
        ([(D, 0, 10, "我没钱"), (A, 5, 12, "你必须还")], 1, 0, "agent cuts in with 5 s left"),
        ([(D, 0, 10, "我没钱"), (A, 9.5, 12, "嗯")], 0, 0, "0.5 s overlap is back-channel"),
        ([(D, 0, 10, "我没钱"), (A, 9, 12, "嗯")], 0, 0, "exactly the threshold is not over it"),
        ([(A, 0, 10, "你好"), (D, 3, 6, "等等")], 0, 1, "the debtor cuts in"),
        ([(A, 0, 5, "你好"), (D, 0, 5, "喂")], 0, 0, "starting together is a collision"),
        ([(A, 0, 10, "你好"), (A, 2, 8, "还款")], 0, 0, "a party cannot interrupt itself"),
        (
            [(D, 0, 10, "我没钱"), (D, 1, 9, "真的"), (A, 4, 12, "你必须还")],
            1,
            0,
            "one agent segment over two debtor segments is one interruption",
        ),
        (
            [(D, 0, 30, "我没钱")] + [(A, s, s + 1, "你必须还") for s in (2, 6, 10, 14)],
            4,
            0,
            "four times into one long debtor turn",
        ),
    ],
)
def test_interruptions(lines: list[Line], agent: int, debtor: int, why: str) -> None:
    metrics = compute_metrics(call(*lines))
    assert (metrics.agent.interruptions, metrics.debtor.interruptions) == (agent, debtor), why


@pytest.mark.parametrize(("times", "flagged"), [(3, False), (4, True)])
def test_more_than_three_agent_interruptions_are_flagged(times: int, flagged: bool) -> None:
    lines: list[Line] = [(D, 0, 60, "我没钱")]
    lines += [(A, 2 + 5 * i, 4 + 5 * i, "你必须还") for i in range(times)]
    flags = {f.code: f for f in metric_flags(compute_metrics(call(*lines)))}
    assert ("agent_interrupts" in flags) is flagged
    if flagged:
        assert (flags["agent_interrupts"].value, flags["agent_interrupts"].threshold) == (4, 3)


def test_debtor_interrupting_is_not_an_agent_flag() -> None:
    lines: list[Line] = [(A, 0, 60, "您好")]
    lines += [(D, 2 + 5 * i, 4 + 5 * i, "我没钱") for i in range(6)]
    metrics = compute_metrics(call(*lines))
    assert metrics.debtor.interruptions == 6
    assert "agent_interrupts" not in codes(metrics)


# --- speech rate ------------------------------------------------------------------------

CJK_50 = (
    "您好我是北风催收公司的客服人员请问您是张先生本人吗"  # 25
    "您的信用卡已经逾期三十天了请尽快还款谢谢再见祝您好"  # 25
)
EN_20 = " ".join(["word"] * 19 + ["don't"])


@pytest.mark.parametrize(
    ("lines", "chars_per_min", "words_per_min", "why"),
    [
        ([(A, 0, 10, CJK_50)], 300.0, None, "Chinese: characters a minute"),
        ([(A, 0, 6, EN_20)], None, 200.0, "English: words a minute, don't is one word"),
        ([(A, 0, 6, "请在APP上还款")], 50.0, None, "APP in a Chinese sentence stays Chinese"),
        (
            [(A, 0, 6, "I called Mr 王 today")],
            None,
            50.0,
            "a Chinese name in English stays English",
        ),
        (
            [(A, 0, 10, CJK_50), (A, 20, 26, EN_20)],
            300.0,
            200.0,
            "each segment in its own script, each rate on its own time",
        ),
        ([(A, 0, 10, CJK_50), (A, 10, 20, "")], 300.0, None, "a blank segment adds no time"),
        ([(D, 0, 10, CJK_50)], None, None, "the debtor's speech is not the agent's"),
        ([], None, None, "empty transcript"),
    ],
)
def test_speech_rate(
    lines: list[Line], chars_per_min: float | None, words_per_min: float | None, why: str
) -> None:
    agent = compute_metrics(call(*lines)).agent
    assert agent.chars_per_min == (None if chars_per_min is None else pytest.approx(chars_per_min))
    assert agent.words_per_min == (None if words_per_min is None else pytest.approx(words_per_min))


def test_debtor_rate_is_measured_too() -> None:
    debtor = compute_metrics(call((D, 0, 5, CJK_50[:25]))).debtor
    assert debtor.chars_per_min == pytest.approx(300.0)


@pytest.mark.parametrize(
    ("lines", "flag", "why"),
    [
        ([(A, 0, 10, CJK_50)], None, "300 characters a minute is the limit, not over it"),
        ([(A, 0, 10, CJK_50 + "请尽快")], ("agent_speaks_fast", 318.0, 300.0), "over it"),
        ([(A, 0, 9, EN_20 + " now")], None, "140 words a minute is not fast"),
        ([(A, 0, 10, EN_20 + " " + EN_20)], ("agent_speaks_fast", 240.0, 200.0), "English"),
        ([(A, 0, 5, CJK_50)], None, "600 a minute but only 5 s of speech: too little to judge"),
        ([(D, 0, 10, CJK_50 + CJK_50)], None, "a fast debtor is not the agent's fault"),
    ],
)
def test_fast_agent_is_flagged(
    lines: list[Line], flag: tuple[str, float, float] | None, why: str
) -> None:
    found = [(f.code, f.value, f.threshold) for f in metric_flags(compute_metrics(call(*lines)))]
    assert found == ([] if flag is None else [flag]), why


def test_fast_flag_names_the_unit() -> None:
    [flag] = metric_flags(compute_metrics(call((A, 0, 10, EN_20 + " " + EN_20))))
    assert "240 words a minute" in flag.message


# --- silences ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "longest", "count", "why"),
    [
        ([], 0.0, 0, "empty transcript"),
        ([(A, 0, 5, "你好")], 0.0, 0, "one stretch of speech has no gap"),
        ([(A, 0, 5, "你好"), (D, 40, 45, "喂")], 35.0, 1, "a dead line"),
        ([(A, 0, 5, "你好"), (D, 25, 45, "喂")], 20.0, 0, "a pause, not a dead line"),
        ([(A, 0, 5, "你好"), (A, 35, 40, "在吗")], 30.0, 0, "exactly the threshold is not over"),
        ([(A, 60, 65, "你好"), (D, 66, 70, "喂")], 1.0, 0, "ringing before the first word"),
        (
            [(A, 0, 10, "你好"), (D, 5, 8, "喂"), (A, 12, 14, "在吗")],
            2.0,
            0,
            "overlapping speech leaves no negative gap",
        ),
        (
            [(A, 0, 5, "请稍等"), (A, 50, 55, "还在吗"), (D, 100, 101, "在")],
            45.0,
            2,
            "two holds",
        ),
    ],
)
def test_silences(lines: list[Line], longest: float, count: int, why: str) -> None:
    metrics = compute_metrics(call(*lines))
    assert metrics.longest_silence_s == pytest.approx(longest), why
    assert metrics.long_silences == count, why
    assert ("long_silence" in codes(metrics)) is (count > 0), why


def test_silence_flag_counts_and_names_the_longest() -> None:
    metrics = compute_metrics(call((A, 0, 5, "请稍等"), (A, 50, 55, "还在吗"), (D, 100, 101, "在")))
    [flag] = metric_flags(metrics)
    assert (flag.code, flag.value, flag.threshold) == ("long_silence", 45.0, 30.0)
    assert flag.message.startswith("2 silence(s) over 30 s, the longest 45 s")


# --- shouting ---------------------------------------------------------------------------

QUIET, LOUD = -25.0, -3.0


@pytest.mark.parametrize(
    ("loudness", "total", "longest", "flagged", "why"),
    [
        (None, None, None, False, "no audio: not measured"),
        ([], 0, 0, False, "no channels"),
        ([[QUIET] * 10], 0, 0, False, "a calm mono call"),
        ([[QUIET, LOUD, LOUD, LOUD, QUIET]], 3, 3, True, "three loud seconds"),
        ([[LOUD, QUIET, LOUD, QUIET, LOUD]], 3, 1, False, "knocks, not a raised voice"),
        ([[QUIET, LOUD, LOUD, QUIET, LOUD]], 3, 2, True, "two in a row is enough"),
        ([[-6.0, -6.0, -6.0]], 0, 0, False, "exactly the threshold is not above it"),
        ([[QUIET] * 5, [LOUD] * 5], 0, 0, False, "a shouting debtor is not the agent"),
    ],
)
def test_shouting(
    loudness: list[list[float]] | None,
    total: int | None,
    longest: int | None,
    flagged: bool,
    why: str,
) -> None:
    metrics = compute_metrics(call((A, 0, 5, "你好")), loudness=loudness)
    assert (metrics.shouting_s, metrics.longest_shout_s) == (total, longest), why
    assert ("agent_shouting" in codes(metrics)) is flagged, why


# --- call frequency ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "window", "count", "why"),
    [
        ([], timedelta(days=7), 1, "the first call counts itself"),
        ([T0 - timedelta(days=d) for d in range(1, 8)], timedelta(days=7), 7, "day 7 is out"),
        ([T0 - timedelta(days=d) for d in range(1, 7)], timedelta(days=7), 7, "six before"),
        ([T0 - timedelta(hours=h) for h in (1, 2, 25)], timedelta(days=1), 3, "a one-day window"),
        ([T0 + timedelta(hours=1)], timedelta(days=7), 1, "later calls are not counted"),
        ([T0 - timedelta(days=30)], timedelta(days=7), 1, "last month is not counted"),
    ],
)
def test_calls_in_window(earlier: list[datetime], window: timedelta, count: int, why: str) -> None:
    assert calls_in_window(earlier, T0, window) == count, why


@pytest.mark.parametrize(("calls", "flagged"), [(None, False), (7, False), (8, True)])
def test_more_than_seven_calls_in_seven_days_are_flagged(calls: int | None, flagged: bool) -> None:
    metrics = compute_metrics(call((A, 0, 5, "你好")), calls_in_window=calls)
    assert ("frequent_calls" in codes(metrics)) is flagged


def test_eight_calls_in_a_week_from_history() -> None:
    history = [T0 - timedelta(hours=20 * i) for i in range(1, 8)]  # all within 7 days
    count = calls_in_window(history, T0)
    [flag] = metric_flags(compute_metrics(call(), calls_in_window=count))
    assert (flag.code, flag.value, flag.threshold) == ("frequent_calls", 8, 7)
    assert "8 calls to this debtor within 7 days" in flag.message


def test_a_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        calls_in_window([], T0, timedelta(0))


# --- thresholds -------------------------------------------------------------------------


def test_clean_call_raises_no_metric_flags() -> None:
    lines: list[Line] = [
        (A, 0, 20, CJK_50[:40]),
        (D, 21, 30, "好的我知道了"),
        (A, 31, 50, CJK_50[:40]),
        (D, 52, 60, "我下周还"),
    ]
    metrics = compute_metrics(call(*lines), loudness=[[QUIET] * 60, [QUIET] * 60])
    assert metric_flags(metrics) == []


def test_thresholds_change_what_is_flagged() -> None:
    metrics = compute_metrics(call((A, 0, 60, "你好"), (D, 60, 100, "嗯")))  # ratio 0.6
    assert codes(metrics) == []
    assert codes(metrics, Thresholds(max_agent_talk_ratio=0.5)) == ["agent_dominates"]
    strict = Thresholds(interruption_overlap_s=0.2)
    lenient = compute_metrics(call((D, 0, 10, "我没钱"), (A, 9.5, 12, "嗯")))
    assert lenient.agent.interruptions == 0
    tight = compute_metrics(call((D, 0, 10, "我没钱"), (A, 9.5, 12, "嗯")), thresholds=strict)
    assert tight.agent.interruptions == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"max_agent_talk_ratio": 0.0},
        {"max_agent_talk_ratio": 1.5},
        {"long_silence_s": 0.0},
        {"max_agent_interruptions": -1},
        {"min_shout_s": 0},
        {"call_window": timedelta(0)},
    ],
)
def test_nonsense_thresholds_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        replace(Thresholds(), **bad)


# --- loudness of a real WAV -------------------------------------------------------------


def test_loud_tone_on_the_agent_channel_is_three_shouting_seconds(tmp_path: Path) -> None:
    quiet = noise(5.0, amplitude=0.01)
    left = np.concatenate([quiet[: 1 * RATE], tone(3.0, 440, amplitude=0.9), quiet[: 1 * RATE]])
    path = write_wav(tmp_path / "shout.wav", [left, quiet])
    agent, debtor = wav_loudness(path)
    assert len(agent) == len(debtor) == 5
    assert agent[1:4] == [pytest.approx(-3.9, abs=0.1)] * 3  # 0.9 of full scale, as a sine
    assert max(debtor) == pytest.approx(-40.0, abs=0.5)
    metrics = compute_metrics(call((A, 0, 5, "你好")), loudness=[agent, debtor])
    assert (metrics.shouting_s, metrics.longest_shout_s) == (3, 3)
    assert codes(metrics) == ["agent_shouting"]


def test_quiet_noise_is_no_shouting(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "calm.wav", [noise(4.5, amplitude=0.1)])
    [agent] = wav_loudness(path)
    assert len(agent) == 5  # the last half second counts
    assert all(level == pytest.approx(-20.0, abs=0.5) for level in agent)
    metrics = compute_metrics(call((A, 0, 4, "你好")), loudness=[agent])
    assert metrics.shouting_s == 0
    assert codes(metrics) == []


def test_digital_silence_has_a_floor(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "silence.wav", [np.zeros(RATE, dtype=np.int16)])
    assert wav_loudness(path) == [[-120.0]]


def test_not_a_wav_is_refused_by_name(tmp_path: Path) -> None:
    fake = tmp_path / "call.wav"
    fake.write_text("not audio")
    with pytest.raises(LoudnessError, match=r"call\.wav"):
        wav_loudness(fake)
    with pytest.raises(LoudnessError, match="does not exist"):
        wav_loudness(tmp_path / "missing.wav")


# --- the check result and the CLI -------------------------------------------------------

INTERRUPTING = {
    "language": "zh",
    "duration": 70.0,
    "segments": [
        {"start": 0.0, "end": 60.0, "speaker": "debtor", "text": "我现在真的没有钱还"},
        *(
            {"start": 2.0 + 5 * i, "end": 4.0 + 5 * i, "speaker": "agent", "text": "你必须还"}
            for i in range(4)
        ),
        {"start": 100.0, "end": 102.0, "speaker": "agent", "text": "喂"},
    ],
}


def test_check_result_adds_metrics_and_keeps_the_score_shape(tmp_path: Path) -> None:
    result = check_transcript(INTERRUPTING, "cn-collections")
    data = result.to_json()
    assert list(data)[:3] == ["score", "flags", "missing"]
    plain = CheckResult(result.score, result.flags, result.missing, result.warnings).to_json()
    assert {k: v for k, v in data.items() if not k.startswith("metric")} == plain
    assert data["metrics"]["agent"]["interruptions"] == 4
    assert data["metrics"]["longest_silence"] == 40.0
    assert data["metrics"]["shouting_seconds"] is None  # no audio given
    assert [f["code"] for f in data["metric_flags"]] == ["agent_interrupts", "long_silence"]
    json.dumps(data)


def test_check_with_the_wav_measures_shouting(tmp_path: Path) -> None:
    left = np.concatenate([noise(2.0, amplitude=0.05), tone(3.0, 440, amplitude=0.9)])
    wav = write_wav(tmp_path / "call.wav", [left, noise(5.0, amplitude=0.05)])
    data = check_transcript(INTERRUPTING, "cn-collections", audio=wav).to_json()
    assert data["metrics"]["shouting_seconds"] == 3
    assert "agent_shouting" in [f["code"] for f in data["metric_flags"]]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF")
    kept = check_transcript(INTERRUPTING, "cn-collections", audio=broken).to_json()
    assert kept["metrics"]["shouting_seconds"] is None
    assert any("shouting not measured" in w for w in kept["warnings"])


def test_cli_prints_metrics(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    path = tmp_path / "call.json"
    path.write_text(json.dumps(INTERRUPTING, ensure_ascii=False), encoding="utf-8")
    result = dialguard(["qa", "check", str(path), "--json"], dialguard_env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["metrics"]["agent"]["interruptions"] == 4
    assert answer["metrics"]["agent_talk_ratio"] == pytest.approx(10 / 70, abs=0.001)
    assert answer["metrics"]["debtor"]["chars_per_min"] == pytest.approx(9.0)
    assert answer["metrics"]["longest_silence"] == 40.0
    [interrupts] = [f for f in answer["metric_flags"] if f["code"] == "agent_interrupts"]
    assert (interrupts["value"], interrupts["threshold"]) == (4, 3)


@pytest.mark.slow
def test_cli_measures_shouting_in_a_recorded_call(
    tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    """End to end through Whisper: a calm sentence, then 3 s of the agent's line at full blast."""
    speech = read_mono(
        espeak_wav("Hello, this is Anna from Northwind Collections.", tmp_path / "a.wav")
    )
    left = np.concatenate(
        [np.zeros(RATE // 2, dtype=np.int16), speech, np.zeros(RATE, dtype=np.int16)]
    )
    left = np.concatenate([left, tone(3.0, 440, amplitude=0.9)])
    wav = write_wav(tmp_path / "call.wav", [left, np.zeros_like(left)])
    result = dialguard(
        ["qa", "check", str(wav), "--json", "--pack", "en-collections"], dialguard_env
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["metrics"]["shouting_seconds"] == 3
    assert "agent_shouting" in [f["code"] for f in answer["metric_flags"]]
    assert answer["metrics"]["agent"]["talk_seconds"] > 1.0  # the sentence was heard

"""End to end: a banned phrase on a call is flagged at its second; a clean call is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.audio import call_audio
from tests.helpers import dialguard

pytestmark = pytest.mark.slow

OPENING = [
    ("agent", 0.3, "Hello, this is Anna from Northwind Collections."),
    ("debtor", 4.0, "Yes, speaking."),
]


def _check(env: dict[str, str], audio: Path) -> dict[str, object]:
    result = dialguard(["qa", "check", str(audio), "--json", "--pack", "en-collections"], env)
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_threat_is_flagged_at_its_second(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    audio = call_audio(
        tmp_path / "threat.wav",
        [*OPENING, ("agent", 7.0, "We will have you arrested if you do not pay today.")],
        seconds=12.0,
    )
    answer = _check(dialguard_env, audio)
    flags = answer["flags"]
    assert isinstance(flags, list)
    threats = [f for f in flags if f["category"] == "threat"]
    assert threats, flags
    assert threats[0]["speaker"] == "agent"
    assert abs(threats[0]["start"] - 7.0) <= 1.5  # the banned words begin at 7 s
    assert isinstance(answer["score"], int) and answer["score"] < 100


def test_clean_call_has_no_flags_and_nothing_missing(
    tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    """A compliant call: the right party verified, then who is calling, the debt, how to pay."""
    audio = call_audio(
        tmp_path / "clean.wav",
        [
            ("agent", 0.3, "Hello, may I speak with David Miller?"),
            ("debtor", 3.5, "Yes, speaking."),
            ("agent", 5.5, "David, my name is Anna, from Northwind Collections."),
            ("agent", 10.0, "Your credit card account is sixty days overdue."),
            ("debtor", 14.5, "I know, money has been tight."),
            ("agent", 18.0, "You can pay online at our website, or set up a payment plan."),
            ("debtor", 23.5, "Okay, thank you."),
        ],
        seconds=27.0,
    )
    answer = _check(dialguard_env, audio)
    assert answer["flags"] == [] and answer["missing"] == [], answer
    assert answer["score"] == 100


def test_debtor_swearing_is_not_an_agent_violation(
    tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    audio = call_audio(
        tmp_path / "debtor.wav",
        [*OPENING, ("debtor", 7.0, "You people are idiots, stop calling me.")],
        seconds=12.0,
    )
    flags = _check(dialguard_env, audio)["flags"]
    assert isinstance(flags, list)
    assert [f for f in flags if f["speaker"] == "agent"] == []


def test_transcript_json_and_bad_pack(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    transcript = tmp_path / "t.json"
    transcript.write_text(
        json.dumps(
            {
                "language": "zh",
                "duration": 20.0,
                "segments": [
                    {"start": 1.0, "end": 3.0, "speaker": "agent", "text": "不还钱就去你单位闹"}
                ],
            }
        )
    )
    answer = json.loads(dialguard(["qa", "check", str(transcript), "--json"], dialguard_env).stdout)
    assert any(f["category"] == "threat" and f["start"] == 1.0 for f in answer["flags"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\nlanguage: en\nrules:\n  - id: r1\n    severity: 7\n")
    result = dialguard(["qa", "check", str(transcript), "--pack", str(bad)], dialguard_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "bad.yaml line" in result.stderr

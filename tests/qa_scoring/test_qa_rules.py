"""Rules applied to calls: what a QA reviewer sees in the flags and the missing items."""

from __future__ import annotations

from typing import Any

import pytest

from qa_scoring.check import check_transcript, load_pack
from qa_scoring.pack import parse_pack
from qa_scoring.rules import Flag

AGENT, DEBTOR = "agent", "debtor"

Line = tuple[str, str] | tuple[str, str, float]


def transcript(*lines: Line, language: str = "zh", gap: float = 0.5) -> dict[str, Any]:
    """Segments in order; a third item sets the segment's start second."""
    segments: list[dict[str, Any]] = []
    t = 0.0
    for line in lines:
        if len(line) == 3:
            t = line[2]
        speaker, text = line[0], line[1]
        duration = max(1.0, len(text) * (0.25 if language == "zh" else 0.06))
        segments.append(
            {"start": t, "end": t + duration, "speaker": speaker, "text": text, "confidence": 0.92}
        )
        t += duration + gap
    return {"language": language, "duration": t, "model": "base", "segments": segments}


def words(text: str, start: float, pieces: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Whisper-style words, half a second each from `start`."""
    assert "".join(p for p, _ in pieces) == text
    return [
        {"start": start + i * 0.5, "end": start + i * 0.5 + 0.5, "word": p, "probability": prob}
        for i, (p, prob) in enumerate(pieces)
    ]


def flags(result_json: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["rule"], f["category"]) for f in result_json["flags"]]


CN_OPENING: list[Line] = [
    (AGENT, "您好，请问是王建国先生吗？"),
    (DEBTOR, "对，是我。"),
    (AGENT, "我是恒信资产管理公司的催收专员刘洋，工号2087。"),
]


def test_threat_flagged_level_4_at_the_right_second() -> None:
    text = "不还钱就去你单位闹"
    data = transcript(*CN_OPENING)
    data["segments"].append(
        {
            "start": 40.0,
            "end": 44.5,
            "speaker": AGENT,
            "text": text,
            "confidence": 0.9,
            "words": words(
                text,
                40.0,
                [
                    ("不", 0.9),
                    ("还钱", 0.9),
                    ("就", 0.9),
                    ("去", 0.9),
                    ("你", 0.9),
                    ("单位", 0.9),
                    ("闹", 0.9),
                ],
            ),
        }
    )
    result = check_transcript(data, "cn-collections")
    [flag] = result.flags
    assert (flag.rule, flag.category, flag.severity) == ("threat-violence", "threat", 4)
    # "去你单位闹" is words 3-6: said from 41.5 s to 43.5 s, not the segment's 40.0
    assert (flag.start, flag.end) == (41.5, 43.5)
    assert flag.text == text
    assert flag.matched == "去你单位闹"
    assert flag.consequence.startswith("四级违规")
    assert not flag.needs_listening


def test_homophone_flag_rests_on_weak_words_and_goes_to_a_listener() -> None:
    text = "再不还我们就去你单卫闹"
    pieces = [
        ("再", 0.9),
        ("不还", 0.9),
        ("我们", 0.9),
        ("就", 0.9),
        ("去", 0.8),
        ("你", 0.8),
        ("单卫", 0.2),
        ("闹", 0.5),
    ]
    data = {
        "language": "zh",
        "duration": 10.0,
        "model": "base",
        "segments": [
            {
                "start": 2.0,
                "end": 6.0,
                "speaker": AGENT,
                "text": text,
                "confidence": 0.75,
                "words": words(text, 2.0, pieces),
            },
        ],
    }
    result = check_transcript(data, "cn-collections")
    [flag] = result.flags
    assert flag.heard == "去你单卫闹"
    assert flag.confidence == pytest.approx((0.8 + 0.8 + 0.2 + 0.5) / 4)
    assert flag.weakest == pytest.approx(0.2)  # 单卫, the word the match turns on
    assert flag.needs_listening
    assert not flag.proven
    # a centre can lower the bar below its weakest word; then it is proven
    assert not check_transcript(data, "cn-collections", listen_below=0.5).flags[0].proven
    assert check_transcript(data, "cn-collections", listen_below=0.15).flags[0].proven


@pytest.mark.parametrize(
    ("speaker", "text", "expected"),
    [
        (DEBTOR, "你们这帮骗子，傻逼，滚！", []),
        (AGENT, "你真是个废物。", [("insult-abuse", "insult")]),
        (DEBTOR, "有本事你们来抓我啊，我就是不还。", []),
        (AGENT, "有本事你就别还。", [("provocation", "provocation")]),
        (DEBTOR, "我都想去借高利贷了。", []),
        (AGENT, "没钱就去借高利贷啊。", [("urge-irrational", "irrational-urging")]),
    ],
)
def test_debtor_words_are_never_agent_violations(
    speaker: str, text: str, expected: list[tuple[str, str]]
) -> None:
    result = check_transcript(transcript((speaker, text)), "cn-collections")
    assert flags(result.to_json()) == expected


@pytest.mark.parametrize(
    ("text", "expected", "why"),
    [
        ("我们不是法院的，我们是受中信银行委托的机构。", [], "我们不是法院的 is not impersonation"),
        ("我是法院的，你的案子马上立案。", ["impersonation"], "claims to be the court"),
        ("我们是受浦发银行委托的第三方机构。", [], "委托 excuses the bank's name"),
        ("我就是银行的，你跟我说就行。", ["impersonation"], "claims to be bank staff"),
        ("您放心，我们绝对不会去您单位闹。", [], "negated threat"),
        ("您刚才说我们要去您单位闹？没有的事。", [], "the debtor's words read back"),
        ("公司规定不能说“不还钱就去你单位闹”这种话。", [], "quoted"),
        ("如果一直不处理，银行可能会按照合同约定通过法律途径解决。", [], "lawful legal process"),
        ("您放心，欠信用卡不会坐牢的。", [], "negated intimidation"),
        ("你再不还就等着坐牢吧。", ["intimidation"], "intimidation"),
        ("千万不要去借高利贷。", [], "negated urging"),
        ("减免以银行审批为准，我不能保证减免全部利息。", [], "no promise"),
        ("你今天还了，我保证减免全部利息。", ["false-promise"], "a promise"),
        ("请通过银行官方渠道还款，不要转给任何个人。", [], "warning, not collection"),
        ("你直接转到我个人账户。", ["personal-collection"], "collects personally"),
        ("利息会滚动计算。", [], "滚动 is not 滚"),
        ("请问您的出生日期是？", [], "出生 sounds like 畜生"),
    ],
)
def test_reviewer_judgements_cn(text: str, expected: list[str], why: str) -> None:
    result = check_transcript(transcript((AGENT, text)), "cn-collections")
    assert sorted({f.category for f in result.flags}) == expected, why


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We will sue you.", ["threat"]),
        ("We will never sue you, we just want a plan.", []),
        ("If you don't pay today, we will have you arrested.", ["threat"]),
        ("The bank may take legal action according to the contract.", []),
        ("We will send people to your house.", ["threat"]),
        ("I am not an attorney.", []),
        ("I'm an attorney and this is your final notice.", ["impersonation"]),
        ("I am not from the police, I work for a collection agency.", []),
        ("You said we would have you arrested. That never happened.", []),
        ("Shut up and listen.", ["abuse"]),
        ("I guarantee we will remove it from your credit report.", ["false-promise"]),
    ],
)
def test_reviewer_judgements_en(text: str, expected: list[str]) -> None:
    result = check_transcript(transcript((AGENT, text), language="en"), "en-collections")
    assert sorted({f.category for f in result.flags}) == expected


def test_one_flag_per_rule_per_segment() -> None:
    result = check_transcript(
        transcript((AGENT, "你给我等着，你等着瞧，后果自负！"), (AGENT, "你给我等着。")),
        "cn-collections",
    )
    assert [f.rule for f in result.flags] == ["threat-violence", "threat-violence"]
    assert result.flags[0].start < result.flags[1].start


REQUIRED_CALLS: list[tuple[list[Line], list[str], str]] = [
    (
        [
            *CN_OPENING,
            (AGENT, "您的信用卡已经逾期45天，欠款8650元。"),
            (AGENT, "您可以通过手机银行APP还款。"),
        ],
        [],
        "everything said",
    ),
    (
        [
            (AGENT, "请问是王先生吗？"),
            (DEBTOR, "是我。"),
            (AGENT, "我是恒信资产管理公司的专员。", 31.0),
            (AGENT, "您的信用卡已经逾期45天。"),
            (AGENT, "您可以通过手机银行还款。"),
        ],
        ["identity-and-agency"],
        "identity after 30 s",
    ),
    (
        [*CN_OPENING, (AGENT, "您可以通过手机银行还款。")],
        ["overdue-facts"],
        "no facts",
    ),
    (
        [*CN_OPENING, (AGENT, "您的信用卡已经逾期45天。")],
        ["repayment-method"],
        "no method",
    ),
    (
        [*CN_OPENING, (AGENT, "您的信用卡已经预期45天。"), (AGENT, "您可以到银行的柜台环款。")],
        [],
        "homophones 预期 and 环款 still state facts and method",
    ),
    (
        [(DEBTOR, "我是恒信资产管理公司的。"), (DEBTOR, "已经逾期了，我可以通过手机银行还款。")],
        ["identity-and-agency", "overdue-facts", "repayment-method"],
        "the debtor saying it does not count for the agent",
    ),
]


@pytest.mark.parametrize(("lines", "missing", "why"), REQUIRED_CALLS)
def test_required_wording(lines: list[Line], missing: list[str], why: str) -> None:
    result = check_transcript(transcript(*lines), "cn-collections")
    assert [m.rule for m in result.missing] == missing, why


def test_empty_transcript_misses_everything_without_crashing() -> None:
    result = check_transcript(
        {"language": "zh", "duration": 0.0, "model": "base", "segments": []}, "cn-collections"
    )
    assert result.flags == ()
    assert {m.category for m in result.missing} == {"identity", "overdue-facts", "repayment-method"}
    assert result.score == 70
    assert any("no speech" in w for w in result.warnings)


RPV: list[tuple[list[Line], bool, str]] = [
    (
        [(AGENT, "请问是王建国先生吗？"), (DEBTOR, "对，是我。"), (AGENT, "您的信用卡逾期了。")],
        False,
        "asked, confirmed, then the debt",
    ),
    (
        [(AGENT, "请问是王建国先生吗？"), (DEBTOR, "是，你哪位？"), (AGENT, "您的信用卡逾期了。")],
        False,
        "a yes that goes on to ask who is calling",
    ),
    (
        [
            (AGENT, "请问是王建国先生吗？"),
            (DEBTOR, "不是，我是他老婆。"),
            (AGENT, "他的信用卡逾期了。"),
        ],
        True,
        "the wife answered",
    ),
    (
        [(AGENT, "请问是王建国先生吗？"), (DEBTOR, "你哪位？"), (AGENT, "您的信用卡欠款逾期了。")],
        True,
        "no confirmation yet",
    ),
    (
        [(AGENT, "您好，关于您信用卡逾期的事情，请问是王先生吗？"), (DEBTOR, "是我。")],
        True,
        "the debt before the question",
    ),
    (
        [
            (AGENT, "请问是王建国吗？"),
            (DEBTOR, "不是吧，你找谁？"),
            (AGENT, "请问您是王建国本人吗？"),
            (DEBTOR, "哦，对，是我。"),
            (AGENT, "您的借款已经逾期了。"),
        ],
        False,
        "denied, asked again, confirmed",
    ),
    (
        [(DEBTOR, "喂？"), (AGENT, "喂，还在吗？请问是王建国吗？"), (DEBTOR, "对，是我。")],
        False,
        "喂，还在吗 is not 未还",
    ),
    (
        [(AGENT, "请问是王建国吗？"), (DEBTOR, "不是我。"), (AGENT, "他欠了我们两万。")],
        True,
        "不是我 is not 是我",
    ),
]


@pytest.mark.parametrize(("lines", "flagged", "why"), RPV)
def test_right_party_verification_order(lines: list[Line], flagged: bool, why: str) -> None:
    result = check_transcript(transcript(*lines), "cn-collections")
    rpv = [f for f in result.flags if f.rule == "rpv-debt-before-verification"]
    assert bool(rpv) is flagged, why
    if rpv:
        assert rpv[0].category == "third-party-disclosure"
        assert rpv[0].speaker == AGENT


def test_rpv_on_a_mono_recording_is_a_warning_not_a_flag() -> None:
    result = check_transcript(transcript((AGENT, "您的信用卡逾期了。")), "cn-collections")
    assert not any(f.rule == "rpv-debt-before-verification" for f in result.flags)
    assert any("no debtor speech" in w for w in result.warnings)


def test_rpv_english() -> None:
    told = transcript(
        (AGENT, "May I speak with Linda Park?"),
        (DEBTOR, "She's not home, this is her husband."),
        (AGENT, "Please tell her she has an overdue balance."),
        language="en",
    )
    verified = transcript(
        (AGENT, "May I speak with Linda Park?"),
        (DEBTOR, "Yes, speaking."),
        (AGENT, "Linda, your account has an overdue balance."),
        language="en",
    )
    assert {f.category for f in check_transcript(told, "en-collections").flags} == {
        "third-party-disclosure"
    }
    assert check_transcript(verified, "en-collections").flags == ()


CUSTOM = """\
name: custom
version: 2
language: zh
consequences: {1: 一级, 2: 二级, 3: 三级, 4: 四级}
rules:
  - id: debtor-threat
    category: debtor-conduct
    severity: 1
    speaker: debtor
    phrases: [我要投诉]
  - id: early-greeting
    category: greeting
    severity: 2
    speaker: any
    within_seconds: 10
    phrases: [再见]
"""


def test_speaker_and_time_scope_of_a_custom_pack() -> None:
    pack = parse_pack(CUSTOM, "custom.yaml")
    data = transcript(
        (AGENT, "我要投诉。"),
        (DEBTOR, "我要投诉你们！"),
        (DEBTOR, "再见。", 5.0),
        (AGENT, "再见。", 20.0),
    )
    result = check_transcript(data, pack)
    assert [(f.rule, f.speaker, f.start) for f in result.flags] == [
        ("debtor-threat", DEBTOR, pytest.approx(1.75)),
        ("early-greeting", DEBTOR, 5.0),
    ]


def test_flag_json_has_what_a_reviewer_needs() -> None:
    result = check_transcript(transcript((AGENT, "你真是个废物。")), "cn-collections")
    item = result.to_json()["flags"][0]
    assert list(item)[:7] == ["rule", "category", "severity", "speaker", "start", "end", "text"]
    assert {"matched", "heard", "confidence", "needs_listening", "consequence"} <= set(item)
    assert isinstance(result.flags[0], Flag)


def test_same_pack_object_and_name_agree() -> None:
    data = transcript((AGENT, "你真是个废物。"))
    by_name = check_transcript(data, "cn-collections").to_json()
    by_object = check_transcript(data, load_pack("cn-collections")).to_json()
    assert by_name == by_object

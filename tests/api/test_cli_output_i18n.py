"""#17 Must 1: what `audit verify`, `policy check` and the imports print for an operator, in the
operator's language; `--json` and the stored codes stay as scripts read them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from api import i18n
from api.audit.chain import Anchor, ChainReport, _problem
from api.i18n import N_, ZH
from tests.helpers import dialguard


def _report() -> ChainReport:
    anchored = datetime(2026, 12, 6, 6, 5, tzinfo=UTC)
    return ChainReport(
        problems=[
            _problem(3, N_("was edited after it was written")),
            _problem(9, N_("is missing, but was anchored %(when)s: it was removed"), when=anchored),
        ],
        entries=12,
        macs_checked=False,
        anchors=2,
        last_holding=Anchor(2, "h", anchored, 0),
        first_bad=3,
    )


def test_audit_verify_reads_in_chinese_and_stays_as_it_was_in_english() -> None:
    with i18n.speaking(ZH):
        chinese = _report().lines()
    assert chinese == [
        "第 3 条：写入后被修改过",
        "第 9 条：已缺失，但曾于 2026年12月6日 06:05（UTC 时间） 被锚定：该条被删除",
        "第一条不匹配的记录：第 3 条",
        "最后一个仍然成立的锚点：第 2 条，写入于 2026年12月6日 06:05（UTC 时间）",
        "未校验 MAC：此处没有审计密钥",
        "审计日志中有 2 处问题",
    ]
    english = _report().lines()
    assert english[:2] == [
        "entry 3: was edited after it was written",
        "entry 9: is missing, but was anchored 2026-12-06T06:05:00+00:00: it was removed",
    ]
    assert english[3] == "last anchor that holds: entry 2, written 2026-12-06T06:05:00+00:00"
    assert _report().problems[1].problem.endswith("it was removed")  # the API's English


def test_policy_check_for_a_chinese_operator(dialguard_env: dict[str, str]) -> None:
    env = {**dialguard_env, "LANG": "zh_CN.UTF-8"}
    at = ["--number", "13800138000", "--at", "2026-11-24T21:30:00+08:00"]
    refused = dialguard(["policy", "check", *at, "--preset", "cn-default"], env)
    assert refused.returncode == 1
    assert refused.stdout.strip() == (
        "不在债务人当地时间 08:00-21:00 的拨打时段内，下次可拨打时间 明天 08:00"
    )
    as_json = dialguard(["policy", "check", *at, "--preset", "cn-default", "--json"], env)
    assert json.loads(as_json.stdout)["rule"] == "window"  # scripts read the same answer
    assert "is outside the calling hours" in json.loads(as_json.stdout)["reason"]
    unknown = dialguard(["policy", "check", *at, "--preset", "nowhere"], env)
    assert unknown.returncode == 2 and "未知的外呼策略 'nowhere'" in unknown.stderr


def test_help_in_the_operators_language(dialguard_env: dict[str, str]) -> None:
    """`--help` needs no valid settings: the shell's locale, else DIALGUARD_LANGUAGE, decides."""
    chinese = dialguard(["dnc", "import", "--help"], {**dialguard_env, "LANG": "zh_CN.UTF-8"})
    assert chinese.returncode == 0 and chinese.stdout.startswith("用法：dialguard dnc import")
    assert "显示此帮助信息并退出" in chinese.stdout and "某一债务人的名单" in chinese.stdout
    site = dialguard(["--help"], {**dialguard_env, "DIALGUARD_LANGUAGE": "zh_CN"})
    assert "面向催收的电话与通话录音服务器。" in site.stdout
    english = dialguard(["dnc", "import", "--help"], dialguard_env)
    assert english.stdout.startswith("usage: ") and "the list of one debtor" in english.stdout

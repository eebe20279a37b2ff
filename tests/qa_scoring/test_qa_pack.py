"""Rule packs: the shipped ones load, and a broken one is refused naming file, line and field.

A compliance lead edits these YAML files by hand; what they need from an error
is the line to open, not a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa_scoring.errors import PackError, QaError
from qa_scoring.pack import (
    Pack,
    RuleKind,
    SpeakerScope,
    load_pack,
    parse_pack,
    shipped_packs,
)

BASE = """\
name: test-pack
version: 1
language: zh
consequences:
  1: 一级违规
  2: 二级违规
  3: 三级违规
  4: 四级违规
categories:
  threat: 威胁
  identity: 表明身份
rules:
  - id: threat-violence
    category: threat
    severity: 4
    phrases: [去你单位闹]
  - id: identity-and-agency
    kind: required
    category: identity
    within_seconds: 30
    patterns: ['我是.{0,10}公司']
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_base_pack_is_valid() -> None:
    pack = parse_pack(BASE, "test.yaml")
    assert pack.name == "test-pack"
    assert pack.version == "1"
    assert [r.id for r in pack.rules] == ["threat-violence", "identity-and-agency"]


@pytest.mark.parametrize("name", ["cn-collections", "en-collections"])
def test_shipped_packs_load(name: str) -> None:
    pack = load_pack(name)
    assert pack.name == name
    assert set(pack.consequences) == {1, 2, 3, 4}
    kinds = {r.kind for r in pack.rules}
    assert kinds == {RuleKind.BANNED, RuleKind.REQUIRED, RuleKind.VERIFY}
    required = {r.category for r in pack.rules if r.kind is RuleKind.REQUIRED}
    assert required == {"identity", "overdue-facts", "repayment-method"}
    identity = pack.rule("identity-and-agency")
    assert identity.within_seconds == 30


def test_cn_pack_covers_every_banned_category_of_the_requirements() -> None:
    categories = {r.category for r in load_pack("cn-collections").rules}
    assert {
        "insult",
        "threat",
        "intimidation",
        "defamation",
        "provocation",
        "third-party-harassment",
        "third-party-disclosure",
        "impersonation",
        "false-promise",
        "irrational-urging",
        "personal-collection",
    } <= categories


def test_en_pack_covers_fdcpa_categories() -> None:
    categories = {r.category for r in load_pack("en-collections").rules}
    assert {"threat", "abuse", "impersonation", "third-party-disclosure", "false-promise"} <= (
        categories
    )


def test_shipped_names() -> None:
    assert {"cn-collections", "en-collections"} <= set(shipped_packs())


def test_defaults_by_kind() -> None:
    pack = parse_pack(BASE)
    banned, required = pack.rules
    assert banned.negation and banned.ignore_reported
    assert banned.speaker is SpeakerScope.AGENT
    assert banned.tolerance == 0.0
    assert not required.negation and not required.ignore_reported
    assert required.severity == 1


# Each row: what the author wrote wrong (old -> new text), the line the error must
# name (the line holding `at`), and what the message must say.
BROKEN = [
    (
        "severity: 4",
        "severity: 7",
        "severity: 7",
        "rule 'threat-violence': severity must be 1-4, not 7",
    ),
    ("severity: 4", "severity: high", "severity: high", "severity must be 1-4, not 'high'"),
    ("severity: 4", "severty: 4", "severty", "unknown field 'severty' in a rule"),
    (
        "    phrases: [去你单位闹]",
        "    phrases: [去你单位闹]\n    tolerance: 0.5",
        "tolerance",
        "tolerance must be a number from 0 to 0.3, not 0.5",
    ),
    (
        "    phrases: [去你单位闹]",
        "    phrases: [去你单位闹]\n    speaker: customer",
        "speaker",
        "speaker must be agent, debtor or any, not 'customer'",
    ),
    (
        "    category: threat\n",
        "    category: threat\n    kind: forbidden\n",
        "kind",
        "kind must be one of banned, required, verify-before-disclosure, not 'forbidden'",
    ),
    (
        "patterns: ['我是.{0,10}公司']",
        "patterns: ['我是(公司']",
        "patterns",
        "pattern '我是(公司' is not a valid regular expression",
    ),
    ("    phrases: [去你单位闹]", "    phrases: ['！！']", "phrases", "phrase '！！' has no words"),
    (
        "    phrases: [去你单位闹]",
        "    phrases: [yes]",
        "phrases",
        "YAML reads a bare yes/no/on/off as true/false: quote it",
    ),
    (
        "    category: threat",
        "    category: threats",
        "category: threats",
        "category 'threats' is not declared under categories",
    ),
    ("  3: 三级违规\n", "", "consequences", "consequences: level 3 is missing"),
    ("language: zh", "language: fr", "language", "language must be one of zh, en, not 'fr'"),
    (
        "    severity: 4\n",
        "    severity: 4\n    severity: 3\n",
        "severity: 3",
        "duplicate key 'severity'",
    ),
    (
        "  - id: identity-and-agency",
        "  - id: threat-violence",
        "id: threat-violence\n    kind",
        "id 'threat-violence' is already used by the rule on line 13",
    ),
    (
        "    phrases: [去你单位闹]\n",
        "",
        "- id: threat-violence",
        "needs at least one of 'phrases' or 'patterns'",
    ),
    (
        "    within_seconds: 30",
        "    within_seconds: -5",
        "within_seconds",
        "within_seconds must be a number from 1 to 86400, not -5",
    ),
    (
        "    phrases: [去你单位闹]",
        "    phrases: [去你单位闹\n    negation: maybe",
        "negation",
        "not valid YAML",
    ),
]


@pytest.mark.parametrize(("old", "new", "at", "says"), BROKEN)
def test_broken_pack_names_file_line_and_field(old: str, new: str, at: str, says: str) -> None:
    assert old in BASE
    text = BASE.replace(old, new, 1)
    with pytest.raises(PackError) as caught:
        parse_pack(text, "cn-collections.yaml")
    message = str(caught.value)
    if "\n" in at:  # the second of two equal lines
        first, _, after = at.partition("\n")
        lines = text.splitlines()
        expected = next(
            n for n in range(1, len(lines)) if first in lines[n - 1] and after.strip() in lines[n]
        )
    else:
        expected = line_of(text, at)
    match = re.match(r"cn-collections\.yaml line (\d+): ", message)
    assert match, message
    if says != "not valid YAML":  # the parser names where it noticed, a line or so later
        assert int(match.group(1)) == expected, message
    assert says in message
    assert caught.value.hint


def test_verify_rule_needs_confirm() -> None:
    text = BASE + (
        "  - id: rpv\n"
        "    kind: verify-before-disclosure\n"
        "    category: threat\n"
        "    severity: 3\n"
        "    phrases: [欠款]\n"
        "    ask: {phrases: [请问是]}\n"
    )
    with pytest.raises(
        PackError, match=r"line 22: rule 'rpv': a verify-before-disclosure rule needs 'confirm'"
    ):
        parse_pack(text, "x.yaml")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "line 1: the pack is empty"),
        ("- just\n- a list\n", "the pack must be a mapping, not a list"),
        ("name: x\nversion: 1\nlanguage: zh\nrules: []\n", "missing field 'consequences'"),
    ],
)
def test_whole_pack_shape(text: str, says: str) -> None:
    with pytest.raises(PackError, match=re.escape(says)):
        parse_pack(text, "x.yaml")


def test_load_by_path_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my-pack.yaml"
    path.write_text(BASE.replace("severity: 4", "severity: 0"), encoding="utf-8")
    with pytest.raises(PackError, match=r"^my-pack\.yaml line 15: rule 'threat-violence'"):
        load_pack(path)


def test_load_by_path_reloads_an_edited_file(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BASE, encoding="utf-8")
    first = load_pack(str(path))
    path.write_text(BASE.replace("name: test-pack", "name: test-pack-2"), encoding="utf-8")
    second = load_pack(str(path))
    assert (first.name, second.name) == ("test-pack", "test-pack-2")


@pytest.mark.parametrize("name", ["cn-colections", "no/such/pack.yaml"])
def test_unknown_pack(name: str) -> None:
    with pytest.raises(PackError) as caught:
        load_pack(name)
    assert "cn-collections" in caught.value.hint
    assert isinstance(caught.value, QaError)


def test_pack_type() -> None:
    assert isinstance(load_pack("cn-collections"), Pack)

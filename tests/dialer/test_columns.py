"""The header table, day counts as stages, and encodings detected or held to: pure rules, read
as tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialer.columns import (
    DEBTOR_HEADERS,
    NOT_STORED,
    PHONE,
    debtor_row,
    header_key,
    map_debtor_headers,
    stage_from_overdue_days,
)
from dialer.numbers import mask, normalize
from dialer.sheets import SheetError, column_letter, decode_text


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("姓名", "name"),
        ("手机号", PHONE + "debtor"),
        ("手机号（必填）", PHONE + "debtor"),  # the template's note after the name
        ("*手机号码", PHONE + "debtor"),  # the template's required mark
        ("身份证号", NOT_STORED),
        ("客户", "client"),
        ("账号", "external_id"),
        ("逾期天数", "overdue_days"),
        ("欠款金额", NOT_STORED),
        ("External ID", "external_id"),
        ("ＮＡＭＥ", "name"),  # full-width letters
        ("callback-windows", "callback_windows"),
    ],
)
def test_headers_map_to_fields(header: str, field: str) -> None:
    assert {header_key(k): v for k, v in DEBTOR_HEADERS.items()}[header_key(header)] == field


@pytest.mark.parametrize(
    ("days", "stage"),
    [("0", "m0"), ("1", "m1"), ("30", "m1"), ("31", "m2"), ("180", "m6"), ("181", "m6plus")],
)
def test_days_past_due_become_the_banks_buckets(days: str, stage: str) -> None:
    assert stage_from_overdue_days(days) == stage
    assert stage_from_overdue_days(f"{days}天") == stage


def test_a_header_is_checked_whole_and_said_as_codes() -> None:
    """The dialer names what is wrong by code; `api` says it in the reader's language
    (tests/api/test_import_messages.py)."""
    chinese = map_debtor_headers(["客户", "账号", "备注"], ["A", "B", "C"])
    assert chinese.chinese and [p.code for p in chinese.problems] == ["header.unknown"]
    assert "'备注 (C)'" in chinese.problems[0].text
    english = map_debtor_headers(["client", "external_id", "name"], ["1", "2", "3"])
    assert not english.chinese and [p.code for p in english.problems] == ["header.missing"]
    assert "lacks column(s) numbers, stage" in english.problems[0].text


def test_phone_columns_join_the_numbers_and_a_stage_column_wins() -> None:
    header = map_debtor_headers(
        ["客户", "账号", "姓名", "手机号", "单位电话", "阶段", "逾期天数"], list("ABCDEFG")
    )
    row = debtor_row(header, ["b", "1", "张三", "13800138000", "010 6552 9988", "legal", "40"])
    assert row["numbers"] == "debtor:13800138000;employer:010 6552 9988"
    assert row["stage"] == "legal"


@pytest.mark.parametrize(
    "written",
    [
        "13800138000",
        "１３８００１３８０００",
        "１３８ ００１３ ８０００",
        "＋８６　１３８－００１３－８０００",
    ],
)
def test_full_width_digits_are_the_same_e164(written: str) -> None:
    assert normalize(written, "CN") == "+8613800138000"
    assert mask(written).endswith("8000") and "138" in mask(written)


TEXT = "姓名,手机号\n张三,13800138000\n"


@pytest.mark.parametrize(
    ("data", "declared", "found"),
    [
        (TEXT.encode(), "auto", "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode(), "auto", "utf-8-sig"),
        (b"\xef\xbb\xbf" + TEXT.encode(), "utf-8", "utf-8-sig"),
        (TEXT.encode("gbk"), "auto", "gb18030"),
        (TEXT.encode("gb18030"), "gbk", "gb18030"),
        (b"name,number\n", "gbk", "gb18030"),  # ASCII is both
    ],
)
def test_encodings_are_detected(data: bytes, declared: str, found: str) -> None:
    text, encoding = decode_text(data, declared)
    assert (text.lstrip("\ufeff"), encoding) == (data.decode(found).lstrip("\ufeff"), found)


@pytest.mark.parametrize(
    ("data", "declared", "words"),
    [
        (TEXT.encode("gbk"), "utf-8", "declared UTF-8 but is GBK"),
        (TEXT.encode(), "gbk", "declared GBK but is UTF-8"),
        (TEXT.encode("utf-16"), "auto", "UTF-16"),
        (b"caf\xe9,1\n", "auto", "not UTF-8 text, nor GBK (bad byte at offset 3, line 1)"),
        (TEXT.encode(), "latin-1", "unknown encoding"),
    ],
)
def test_wrong_encodings_are_named(data: bytes, declared: str, words: str) -> None:
    with pytest.raises(SheetError, match=words.replace("(", r"\(").replace(")", r"\)")):
        decode_text(data, declared)


@pytest.mark.parametrize(("index", "letter"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ")])
def test_column_letters(index: int, letter: str) -> None:
    assert column_letter(index) == letter


def test_the_documented_table_is_the_table() -> None:
    """docs/imports.md lists every header the code maps, to the same field, and no other."""
    doc = (Path(__file__).parents[2] / "docs" / "imports.md").read_text(encoding="utf-8")
    section = doc.split("## Column headers", 1)[1].split("\n- ", 1)[0]
    documented = {
        header.strip(): target.strip(" `")
        for target, headers in re.findall(r"^\| (`[a-z_:]+`) \| (.+) \|$", section, re.M)
        for header in headers.split(",")
    }
    assert documented == dict(DEBTOR_HEADERS)

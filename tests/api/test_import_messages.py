"""#17 Must 3: a rejected row of a bank's file is named by its line and column, and what is wrong
with it is said in the reader's language; the dialer's codes and English stay as they are."""

from __future__ import annotations

import pytest

from api import i18n
from api.i18n import ZH
from api.import_messages import MESSAGES, problem, row_error, say
from dialer.columns import map_debtor_headers
from dialer.debtors.bulk_import import Format, read_records, validate
from dialer.dnc import parse_file
from dialer.said import ENGLISH
from dialer.sheets import Kind, SheetError, read_sheet

HEADERS = "客户,账号,姓名,手机号,逾期天数\r\n"


def _refused(text: str) -> list[str]:
    read = read_records(text.encode("gbk"), Format.CSV)
    _, errors = validate(read.rows, "CN", named=read.columns)
    return [row_error(e.line, e.field, e.message, e.said) for e in errors]


def test_the_catalogue_holds_every_code_the_dialer_says() -> None:
    """`make messages` extracts api/ only: its copy of the dialer's table must be the table."""
    assert dict(MESSAGES) == dict(ENGLISH)


def test_bad_rows_are_named_by_line_and_column_in_chinese() -> None:
    text = HEADERS + "bank-a,ZH-1,,13800138000,45\r\nbank-a,ZH-2,李四,1380013800,很久\r\n"
    with i18n.speaking(ZH):
        chinese = _refused(text)
    assert chinese == [
        "第 2 行，姓名：为必填项",
        "第 3 行，逾期天数：须是整数天数",
        "第 3 行，手机号：第 1 个号码：13****3800 不是所属地区的有效号码（未分配的号段）",
    ]
    english = _refused(text)
    assert english[0] == "line 2, 姓名: name is required"  # the dialer's own sentence
    assert "1380013800" not in "".join(chinese + english)  # masked in every language


def test_a_refused_file_and_its_header_in_chinese() -> None:
    gbk = (HEADERS + "bank-a,ZH-1,张三,13800138000,45\r\n").encode("gbk")
    with pytest.raises(SheetError) as refused:
        read_sheet(gbk, Kind.CSV, "utf-8", max_rows=10)
    with i18n.speaking(ZH):
        assert "声明为 UTF-8，实际是 GBK/GB18030 编码" in say(refused.value.said)
    assert "declared UTF-8 but is GBK" in say(refused.value.said)
    header = map_debtor_headers(["客户", "账号", "备注", ""], ["A", "B", "C", "D"])
    with i18n.speaking(ZH):
        said = [say(p) for p in header.problems]
    assert said == [
        "表头中有无法识别的列“备注”（C）、列“（空表头）”（D）；"
        "请使用 docs/imports.md 中列出的列名（客户、账号、姓名、手机号……）"
    ]
    missing = map_debtor_headers(["client", "external_id", "name"], ["1", "2", "3"])
    with i18n.speaking(ZH):
        assert say(missing.problems[0]) == "表头缺少必需的列：手机号（或号码）、阶段（或逾期天数）"


def test_do_not_call_rows_in_chinese() -> None:
    listed = parse_file("号码,原因\n13800138000,本人要求\n\n12,x\n,y\n".encode("gbk"), "CN")
    with i18n.speaking(ZH):
        shown = [row_error(e.line, "", e.message, e.said) for e in listed.errors]
        alone = [problem(e.message, e.said) for e in listed.errors]
    assert shown == ["第 4 行：12 不是所属地区的有效号码（位数太少）", "第 5 行：该行没有号码"]
    assert alone[1] == "该行没有号码"
    assert [row_error(e.line, "", e.message, e.said) for e in listed.errors][1] == (
        "line 5: the row has no number"
    )

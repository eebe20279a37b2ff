"""The files Chinese banks send, generated here as they make them: .xlsx with Chinese headers,
merged cells and formulas, GBK CSV, UTF-8 CSV with a BOM; each imported or refused by name."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine

from dialer.debtors import Sealer, find, numbers_of
from dialer.debtors.bulk_import import Format, ImportResult, import_debtors
from dialer.dnc import parse_file
from dialer.sheets import Kind, SheetError
from recording.db.engine import session_factory

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
HEADERS = ["客户", "账号", "姓名", "手机号", "家属电话", "逾期天数", "身份证号", "欠款金额"]
ROWS = [
    ["bank-a", "ZH-1", "张三", "13800138000", "13900139000", "45", "11010519491231002X", "12000"],
    ["bank-a", "ZH-2", "陳美玲", "１３７ ００１３ ７０００", "", "200", "", "800.5"],
]


def _csv(rows: list[list[str]], headers: list[str] = HEADERS) -> str:
    return "\r\n".join(",".join(cells) for cells in [headers, *rows]) + "\r\n"


def _xlsx(rows: list[list[object]], headers: list[str] = HEADERS) -> Workbook:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    return book


def _bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _with_saved_values(data: bytes, values: dict[str, str]) -> bytes:
    """The workbook as Excel saves it: each formula cell carries the value it computed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = body.decode()
                for ref, value in values.items():
                    text = re.sub(
                        rf'(<c r="{ref}"[^>]*>)(<f>[^<]*</f>)<v\s*/>',
                        rf"\1\2<v>{value}</v>",
                        text,
                    )
                body = text.encode()
            target.writestr(item, body)
    return out.getvalue()


def _import(
    engine: Engine, sealer: Sealer, data: bytes, fmt: Format, encoding: str = "auto"
) -> ImportResult:
    return import_debtors(session_factory(engine), data, fmt, sealer, "CN", NOW, encoding=encoding)


def _stored(engine: Engine, sealer: Sealer, account: str) -> tuple[str, str, list[str]]:
    with session_factory(engine)() as session:
        debtor = find(session, "bank-a", account)
        assert debtor is not None
        rows = numbers_of(session, debtor)
        numbers = sealer.numbers(debtor, rows)
        pairs = [f"{n.role}:{number}" for n, number in zip(rows, numbers, strict=True)]
        return sealer.name(debtor), debtor.stage, pairs


@pytest.mark.parametrize(
    ("shape", "encoding"),
    [
        ("gbk-csv", "gb18030"),
        ("utf8-bom-csv", "utf-8-sig"),
        ("utf8-csv", "utf-8"),
        ("xlsx", "xlsx"),
    ],
)
def test_a_chinese_bank_file_imports_in_every_shape(
    engine: Engine, sealer: Sealer, shape: str, encoding: str
) -> None:
    data = {
        "gbk-csv": _csv(ROWS).encode("gbk"),
        "utf8-bom-csv": b"\xef\xbb\xbf" + _csv(ROWS).encode(),
        "utf8-csv": _csv(ROWS).encode(),
        "xlsx": _bytes(
            _xlsx([[*r[:3], int(r[3]) if r[3].isascii() else r[3], *r[4:]] for r in ROWS])
        ),
    }[shape]
    fmt = Format.XLSX if shape == "xlsx" else Format.CSV
    result = _import(engine, sealer, data, fmt)
    assert result.errors == []
    assert (result.created, result.encoding) == (2, encoding)
    assert any("身份证号" in w.text and "欠款金额" in w.text for w in result.warnings)
    assert _stored(engine, sealer, "ZH-1") == (
        "张三",
        "m2",  # 45 days past due: the bank's M2 bucket
        ["debtor:+8613800138000", "relative:+8613900139000"],
    )
    # Traditional characters are kept as written; full-width digits with spaces are one number.
    assert _stored(engine, sealer, "ZH-2") == ("陳美玲", "m6plus", ["debtor:+8613700137000"])


def test_full_width_digits_are_the_same_account_number(engine: Engine, sealer: Sealer) -> None:
    """A re-sent file typing the number in full width updates the debtor, adds no number."""
    _import(engine, sealer, _csv(ROWS[:1]).encode(), Format.CSV)
    wide = [[*ROWS[0][:3], "１３８ ００１３ ８０００", "+86 139-0013-9000", *ROWS[0][5:]]]
    again = _import(engine, sealer, _csv(wide).encode("gbk"), Format.CSV)
    assert (again.created, again.updated) == (0, 1)
    assert _stored(engine, sealer, "ZH-1")[2] == [
        "debtor:+8613800138000",
        "relative:+8613900139000",
    ]


def test_a_gbk_file_declared_utf8_is_refused_naming_the_encoding(
    engine: Engine, sealer: Sealer
) -> None:
    result = _import(engine, sealer, _csv(ROWS).encode("gbk"), Format.CSV, encoding="utf-8")
    assert [(e.line, e.field) for e in result.errors] == [(0, "file")]
    assert "declared UTF-8 but is GBK" in result.errors[0].message
    utf8 = _import(engine, sealer, _csv(ROWS).encode(), Format.CSV, encoding="gbk")
    assert "declared GBK but is UTF-8" in utf8.errors[0].message
    assert _import(engine, sealer, _csv(ROWS).encode("gbk"), Format.CSV, encoding="gbk").ok


def test_merged_cells_are_refused_with_the_range(engine: Engine, sealer: Sealer) -> None:
    book = _xlsx(
        [[*ROWS[0][:3], "13800138000", *ROWS[0][4:]], ["bank-a", "ZH-3", "", "13700137000"]]
    )
    sheet = book.active
    assert sheet is not None
    sheet.merge_cells("C2:C3")  # one name for two accounts, as a bank's report groups them
    result = _import(engine, sealer, _bytes(book), Format.XLSX)
    assert [(e.line, e.field) for e in result.errors] == [(0, "file")]
    assert "C2:C3" in result.errors[0].message and "merged cells" in result.errors[0].message
    assert result.errors[0].said is not None and result.errors[0].said.code == "sheet.merged"
    with session_factory(engine)() as session:
        assert find(session, "bank-a", "ZH-1") is None


def test_formulas_are_read_as_excel_saved_them(engine: Engine, sealer: Sealer) -> None:
    rows: list[list[object]] = [
        ["bank-a", "ZH-1", "张三", 13800138000, "", "=30+15", "", "=1000*12"],
        ["bank-a", "ZH-2", "李四", 13700137000, "", "=10*3", "", ""],
    ]
    unsaved = _bytes(_xlsx(rows))
    refused = _import(engine, sealer, unsaved, Format.XLSX)
    # the day counts are formulas nobody computed: each named by row and column, in Chinese
    assert [(e.line, e.field) for e in refused.errors] == [(2, "逾期天数 (F)"), (3, "逾期天数 (F)")]
    assert "F2" in refused.errors[0].message and "formula" in refused.errors[0].message
    assert [e.said.code for e in refused.errors if e.said] == ["sheet.formula_unsaved"] * 2

    saved = _with_saved_values(unsaved, {"F2": "45", "H2": "12000", "F3": "30"})
    result = _import(engine, sealer, saved, Format.XLSX)
    assert result.errors == [] and result.created == 2
    assert "formulas were read as the values Excel saved with them" in [
        w.text for w in result.warnings
    ]
    assert _stored(engine, sealer, "ZH-1")[1] == "m2"
    assert _stored(engine, sealer, "ZH-2")[1] == "m1"


@pytest.mark.parametrize(
    ("headers", "row", "expected"),
    [
        # an unknown column is named, with where to find it
        ([*HEADERS, "地址"], [*ROWS[0], "北京"], (0, "file", "地址 (column 9)")),
        # a bad number is named by the file's own column
        (HEADERS, [*ROWS[0][:3], "1380013800", *ROWS[0][4:]], (2, "手机号", "not a valid number")),
        (HEADERS, [*ROWS[0][:5], "很久", *ROWS[0][6:]], (2, "逾期天数", "whole number of days")),
        (HEADERS, ["", *ROWS[0][1:]], (2, "客户", "client is required")),
    ],
)
def test_errors_name_the_row_and_the_column(
    engine: Engine,
    sealer: Sealer,
    headers: list[str],
    row: list[str],
    expected: tuple[int, str, str],
) -> None:
    result = _import(engine, sealer, _csv([row], headers).encode("gbk"), Format.CSV)
    line, column, words = expected
    assert [(e.line, e.field) for e in result.errors] == [(line, column)]
    assert words in result.errors[0].message


def test_a_number_excel_rounded_is_refused_by_cell(engine: Engine, sealer: Sealer) -> None:
    book = _xlsx(
        [["bank-a", 6.222021234567891e18, "张三", 13800138000]], [*HEADERS[:3], "手机号", "阶段"]
    )
    result = _import(engine, sealer, _bytes(book), Format.XLSX)
    assert (result.errors[0].line, result.errors[0].field) == (2, "账号 (B)")
    assert "15" in result.errors[0].message


def test_do_not_call_lists_come_as_gbk_or_xlsx() -> None:
    text = "手机号,原因,姓名\r\n１３８ ００１３ ８０００,本人要求,张三\r\n13900139000,投诉,李四\r\n"
    listed = parse_file(text.encode("gbk"), "CN")
    assert [(r.e164, r.reason) for r in listed.rows] == [
        ("+8613800138000", "本人要求"),
        ("+8613900139000", "投诉"),
    ]
    assert listed.encoding == "gb18030" and any("姓名" in w.text for w in listed.warnings)

    book = _xlsx([["备注", 13800138000], ["", "13900139000"]], ["原因", "号码"])
    from_excel = parse_file(_bytes(book), "CN", kind=Kind.XLSX)
    assert [(r.e164, r.reason) for r in from_excel.rows] == [
        ("+8613800138000", "备注"),
        ("+8613900139000", "listed"),
    ]
    no_number = parse_file("姓名,原因\n张三,x\n".encode("gbk"), "CN")
    assert no_number.rows == [] and "no number column" in no_number.errors[0].message
    assert no_number.errors[0].said.code == "dnc.no_number_column"
    with pytest.raises(SheetError, match="declared UTF-8 but is GBK"):
        parse_file(text.encode("gbk"), "CN", encoding="utf-8")

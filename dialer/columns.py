"""The column headers banks put on debtor and do-not-call files, in Chinese or English, and
what each becomes: the one table of them (documented in docs/imports.md).

Banks do not send our column names: a Chinese bank's export says 姓名,
手机号, 账号, 逾期天数. Rather than make an operator rename columns in Excel
(and get it wrong at 3 a.m.), each header is looked up here. Pure: no file,
no database, so the table is the rule and the tests read it.

A header is compared after NFKC (full-width letters and brackets fold to
ASCII), with spaces, a leading or trailing ``*`` (the "required" mark of
bank templates) and a bracketed note (``手机号（必填）``) dropped, case
folded. A header the table does not know is refused by name, never dropped
silently: a misspelt 手机号 column would otherwise import debtors with no
numbers to call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dialer.said import Said, said

# What a recognised column becomes. The first seven are the fields of
# `dialer.debtors.validation.validate_row`; the rest are folded into them.
CLIENT = "client"
EXTERNAL_ID = "external_id"
NAME = "name"
STAGE = "stage"
TIMEZONE = "timezone"
NUMBERS = "numbers"
CALLBACK_WINDOWS = "callback_windows"
#: Days past due: becomes the stage (`stage_from_overdue_days`) when the file has no stage column.
OVERDUE_DAYS = "overdue_days"
#: Recognised and deliberately not stored (data minimisation): the dialer never needs them.
NOT_STORED = "not_stored"
#: One number per cell, of the role after the colon: ``phone:debtor``.
PHONE = "phone:"

#: Every header a debtor file may carry, as compared (see `header_key`), and what it becomes.
DEBTOR_HEADERS: Mapping[str, str] = {
    # the collection system's own names
    "client": CLIENT,
    "external_id": EXTERNAL_ID,
    "name": NAME,
    "stage": STAGE,
    "timezone": TIMEZONE,
    "numbers": NUMBERS,
    "callback_windows": CALLBACK_WINDOWS,
    # English as banks write it
    "creditor": CLIENT,
    "bank": CLIENT,
    "account": EXTERNAL_ID,
    "accountno": EXTERNAL_ID,
    "accountnumber": EXTERNAL_ID,
    "debtorname": NAME,
    "mobile": PHONE + "debtor",
    "phone": PHONE + "debtor",
    "daysoverdue": OVERDUE_DAYS,
    "dayspastdue": OVERDUE_DAYS,
    "dpd": OVERDUE_DAYS,
    "idnumber": NOT_STORED,
    "amount": NOT_STORED,
    "amountowed": NOT_STORED,
    "balance": NOT_STORED,
    # Chinese
    "客户": CLIENT,
    "委托方": CLIENT,
    "委托机构": CLIENT,
    "银行": CLIENT,
    "账号": EXTERNAL_ID,
    "帐号": EXTERNAL_ID,
    "合同号": EXTERNAL_ID,
    "案件编号": EXTERNAL_ID,
    "客户编号": EXTERNAL_ID,
    "姓名": NAME,
    "客户姓名": NAME,
    "债务人姓名": NAME,
    "阶段": STAGE,
    "催收阶段": STAGE,
    "时区": TIMEZONE,
    "号码": NUMBERS,
    "电话列表": NUMBERS,
    "回拨时段": CALLBACK_WINDOWS,
    "手机号": PHONE + "debtor",
    "手机号码": PHONE + "debtor",
    "手机": PHONE + "debtor",
    "电话": PHONE + "debtor",
    "联系电话": PHONE + "debtor",
    "家属电话": PHONE + "relative",
    "亲属电话": PHONE + "relative",
    "单位电话": PHONE + "employer",
    "紧急联系人电话": PHONE + "emergency",
    "逾期天数": OVERDUE_DAYS,
    "身份证号": NOT_STORED,
    "身份证号码": NOT_STORED,
    "证件号码": NOT_STORED,
    "欠款金额": NOT_STORED,
    "逾期金额": NOT_STORED,
    "欠款总额": NOT_STORED,
}

DEBTOR_REQUIRED = (CLIENT, EXTERNAL_ID, NAME)

#: A do-not-call file: the number, and optionally why.
DNC_NUMBER = "number"
DNC_REASON = "reason"
DNC_HEADERS: Mapping[str, str] = {
    "number": DNC_NUMBER,
    "phone": DNC_NUMBER,
    "mobile": DNC_NUMBER,
    "号码": DNC_NUMBER,
    "电话": DNC_NUMBER,
    "电话号码": DNC_NUMBER,
    "手机": DNC_NUMBER,
    "手机号": DNC_NUMBER,
    "手机号码": DNC_NUMBER,
    "reason": DNC_REASON,
    "note": DNC_REASON,
    "原因": DNC_REASON,
    "备注": DNC_REASON,
}

#: Days past due to the stage the bank's own buckets name (M1 = 1-30 days, ..., M6 = 151-180).
OVERDUE_BUCKET_DAYS = 30
OVERDUE_LAST_BUCKET = 6

_NOTE = re.compile(r"\(.*?\)|\[.*?\]|【.*?】")
_HAN = re.compile(r"[\u3400-\u9fff]")


def header_key(header: str) -> str:
    """The header as the table is keyed: folded so that banks' spellings meet."""
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "")
    text = _NOTE.sub("", text).strip().strip("*").casefold()
    return re.sub(r"[\s_\-]+", "", text)


def _lookup(table: Mapping[str, str], header: str) -> str | None:
    folded = _DEBTOR_FOLDED if table is DEBTOR_HEADERS else _DNC_FOLDED
    return folded.get(header_key(header))


_DEBTOR_FOLDED = {header_key(name): target for name, target in DEBTOR_HEADERS.items()}
_DNC_FOLDED = {header_key(name): target for name, target in DNC_HEADERS.items()}


def is_chinese(headers: Sequence[str]) -> bool:
    """Whether to answer in Chinese: the file's own headers are."""
    return any(_HAN.search(h) for h in headers)


@dataclass(frozen=True)
class HeaderMap:
    """What each column of a file becomes; `problems` refuse the file, `notes` only warn.

    `chinese` says the file's own headers are Chinese; what is said about them
    is a `Said`, in the reader's language wherever `api` shows it.
    """

    fields: tuple[str | None, ...]
    names: tuple[str, ...]
    chinese: bool
    problems: list[Said] = field(default_factory=list)
    notes: list[Said] = field(default_factory=list)

    def column_of(self, target: str) -> str:
        """The file's own header for a field, so an error names the column the operator sees."""
        for name, mapped in zip(self.names, self.fields, strict=True):
            if mapped == target or (
                target == NUMBERS and mapped is not None and mapped.startswith(PHONE)
            ):
                return name
        if target == STAGE:
            for name, mapped in zip(self.names, self.fields, strict=True):
                if mapped == OVERDUE_DAYS:
                    return name
        return target


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n[:30]) for n in names)


def map_debtor_headers(headers: Sequence[str], column_names: Sequence[str | Said]) -> HeaderMap:
    """The debtor file's header read against `DEBTOR_HEADERS`.

    `column_names` are how the operator finds each column (its letter in a
    spreadsheet, its position in a CSV), used in messages.
    """
    names = tuple(h.strip() for h in headers)
    chinese = is_chinese(names)
    fields = tuple(_lookup(DEBTOR_HEADERS, h) if h else None for h in names)
    problems: list[Said] = []
    notes: list[Said] = []
    unknown = tuple(
        said("header.at", name=names[i][:30] or said("header.blank"), where=column_names[i])
        for i, f in enumerate(fields)
        if f is None
    )
    if unknown:
        problems.append(said("header.unknown", columns=unknown))
    single = [f for f in fields if f is not None and f != NOT_STORED and not f.startswith(PHONE)]
    twice = sorted({f for f in single if single.count(f) > 1})
    if twice:
        doubled = [names[i] for i, f in enumerate(fields) if f in twice]
        problems.append(said("header.twice", columns=_quoted(doubled)))
    present = set(fields)
    missing = [f for f in DEBTOR_REQUIRED if f not in present]
    if not any(f == NUMBERS or (f or "").startswith(PHONE) for f in fields):
        missing.append(NUMBERS)
    if STAGE not in present and OVERDUE_DAYS not in present:
        missing.append(STAGE)
    if missing and not unknown:
        problems.append(said("header.missing", fields=tuple(said(f"field.{m}") for m in missing)))
    ignored = [names[i] for i, f in enumerate(fields) if f == NOT_STORED]
    if ignored:
        notes.append(said("header.not_stored", columns=_quoted(ignored)))
    return HeaderMap(fields, names, chinese, problems, notes)


def stage_from_overdue_days(value: object) -> str:
    """M1 for 1-30 days past due, M2 for 31-60, ..., m6plus past 180; m0 when not yet due.

    The buckets are the ones Chinese banks report in, so a stage read from
    逾期天数 means what the bank's own reports mean by it. Raises ValueError
    for anything but a whole number of days.
    """
    text = str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    text = unicodedata.normalize("NFKC", text).removesuffix("天").strip()
    if not text.isdigit():
        raise ValueError("must be a whole number of days")
    days = int(text)
    if days == 0:
        return "m0"
    bucket = (days + OVERDUE_BUCKET_DAYS - 1) // OVERDUE_BUCKET_DAYS
    return f"m{bucket}" if bucket <= OVERDUE_LAST_BUCKET else f"m{OVERDUE_LAST_BUCKET}plus"


def debtor_row(header: HeaderMap, cells: Sequence[object]) -> dict[str, object]:
    """One data row as `validate_row` takes it: phone columns joined into ``numbers``.

    A stage column wins over 逾期天数; a bad day count is left for the
    validator to name (as the stage column). Empty phone cells are skipped,
    so a debtor with no relative's number leaves that cell blank.
    """
    row: dict[str, object] = {}
    numbers: list[str] = []
    overdue: object = None
    for mapped, value in zip(header.fields, cells, strict=False):
        if mapped is None or mapped == NOT_STORED:
            continue
        if mapped.startswith(PHONE):
            text = "" if value is None else str(value).strip()
            if text:
                numbers.append(f"{mapped.removeprefix(PHONE)}:{text}")
        elif mapped == NUMBERS:
            text = "" if value is None else str(value).strip()
            if text:
                numbers.append(text)
        elif mapped == OVERDUE_DAYS:
            overdue = value
        else:
            row[mapped] = value
    if numbers:
        row[NUMBERS] = ";".join(numbers)
    if STAGE not in row and overdue not in (None, ""):
        try:
            row[STAGE] = stage_from_overdue_days(overdue)
        except ValueError:
            row[BAD_OVERDUE] = True
    return row


#: Marks a row whose 逾期天数 is not a number of days (the importer names that column).
BAD_OVERDUE = "__bad_overdue__"


def map_dnc_headers(headers: Sequence[str]) -> tuple[int, int | None, list[str]] | None:
    """(number column, reason column, unknown headers) when the first row is a header, else None.

    A do-not-call file may have no header at all (``number[,reason]``):
    the first row is a header when its first cell is a known header name or
    holds no digit at all.
    """
    fields = [_lookup(DNC_HEADERS, h) for h in headers]
    first = headers[0].strip() if headers else ""
    if fields and fields[0] is None and any(c.isdigit() for c in first):
        return None
    if DNC_NUMBER not in fields:
        return -1, None, [h for h, f in zip(headers, fields, strict=True) if f is None and h]
    reason = fields.index(DNC_REASON) if DNC_REASON in fields else None
    unknown = [h for h, f in zip(headers, fields, strict=True) if f is None and h.strip()]
    return fields.index(DNC_NUMBER), reason, unknown

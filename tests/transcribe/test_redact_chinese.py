"""Chinese personal data masked wherever people read text: resident ID numbers, card numbers
spoken in Chinese numerals, mobile numbers, in transcripts, log lines and search results."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.logs import JsonFormatter
from recording.db.engine import session_factory
from tests.factories import T0, add_recording
from transcribe.models import SegmentRow
from transcribe.redact import mask_numbers, mask_personal, mask_words
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.search import SearchQuery, search
from transcribe.store import save_transcript


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        # resident ID numbers, with the X check digit written, in lower case, and spoken (叉)
        ("身份证号11010519491231002X", "身份证号**************002X"),
        ("id 11010519491231002x ok", "id **************002x ok"),
        ("身份证一一零一零五一九四九一二三一零零二叉", "身份证**************零零二叉"),
        # card numbers spoken as Chinese numerals, grouped, mixed with Arabic digits
        ("卡号六二二二 零二一二 三四五六 七八九零", "卡号**** **** **** 七八九零"),
        ("卡号6222 零二一二 3456 七八九零", "卡号**** **** **** 七八九零"),
        ("幺三八，零零一三，八零零零", "***，****，八零零零"),  # ASR's commas between groups
        ("尾号两两三三四四五五六六", "尾号******五五六六"),  # 两 is two, as in numbers
        # mobile numbers in full width, and with 〇 for zero
        ("电话１３８００１３８０００", "电话*******８０００"),
        ("一三八〇〇一三八〇〇〇", "*******八〇〇〇"),
        # what is not personal data stays readable
        ("还款3000元", "还款3000元"),
        ("三月十五号之前还两千五", "三月十五号之前还两千五"),
        ("you owe 2,500 yuan by March 15", "you owe 2,500 yuan by March 15"),
    ],
)
def test_transcripts(said: str, stored: str) -> None:
    assert mask_numbers(said) == stored
    assert len(mask_numbers(said)) == len(said)  # masking keeps offsets for the words


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("refused +8613800138000 (dnc)", "refused +*********8000 (dnc)"),
        ("debtor 138 0013 8000 on hold", "debtor *** **** 8000 on hold"),
        ("row 12: id 11010519491231002X bad", "row 12: id **************002X bad"),
        ("card 6222021234567890123", "card ***************0123"),
        ("heard 幺三八零零一三八", "heard ****零一三八"),
        # ids, hashes, dates, ports, counts and sizes are not personal data
        ("call 3f2a1234567b0c9d took 123456 ms", "call 3f2a1234567b0c9d took 123456 ms"),
        ("2026-11-24T09:30:00 port 50600", "2026-11-24T09:30:00 port 50600"),
        ("seq 1234567890 bytes 10485760", "seq 1234567890 bytes 10485760"),
        (
            "recording 0123456789abcdef0123456789abcdef",
            "recording 0123456789abcdef0123456789abcdef",
        ),
    ],
)
def test_log_lines(line: str, shown: str) -> None:
    assert mask_personal(line) == shown


def test_the_log_formatter_masks_messages_fields_and_tracebacks() -> None:
    logger = logging.getLogger("test.redact")
    try:
        raise ValueError("row 3: 13800138000 is not allowed")
    except ValueError:
        record = logger.makeRecord(
            "test.redact",
            logging.ERROR,
            __file__,
            1,
            "import refused %s",
            ("11010519491231002X",),
            exc_info=sys.exc_info(),
            extra={"number": "+8613800138000", "call_id": "c-1"},
        )
    line = json.loads(JsonFormatter("api").format(record))
    text = json.dumps(line, ensure_ascii=False)
    for secret in ("11010519491231002X", "13800138000", "8613800138000"):
        assert secret not in text
    assert line["msg"] == "import refused **************002X"
    assert line["number"] == "+*********8000" and line["call_id"] == "c-1"


def test_words_are_masked_as_their_segment() -> None:
    words = [" 我的", "卡号", "六二二二", " 零二一二", " 三四五六", " 七八九零", " 谢谢"]
    masked = mask_words(words)
    assert masked == [" 我的", "卡号", "****", " ****", " ****", " 七八九零", " 谢谢"]


def _transcript(words: list[str]) -> Transcript:
    timed = tuple(Word(i * 0.5, i * 0.5 + 0.4, w, 0.9) for i, w in enumerate(words))
    return Transcript(
        language="zh",
        duration=5.0,
        model="test",
        segments=(Segment(0.0, 4.0, Speaker.DEBTOR, "".join(words), 0.9, timed),),
    )


def test_stored_transcripts_and_search_results_hold_no_spoken_number(engine: Engine) -> None:
    sessions = session_factory(engine)
    said = [
        "我的",
        "卡号",
        "六二二二",
        "零二一二",
        "三四五六",
        "七八九零",
        "，",
        "身份证",
        "11010519491231002X",
    ]
    with sessions() as session:
        recording = add_recording(session)
        save_transcript(session, recording.id, _transcript(said), "1", T0)
    with sessions() as session:
        page = search(session, SearchQuery(text="卡号"))
        assert len(page.hits) == 1
        hit = page.hits[0]
        for secret in ("六二二二零二一二三四五六", "110105194912310"):
            assert secret not in hit.excerpt and secret not in hit.snippet
        assert "七八九零" in hit.excerpt and "002X" in hit.excerpt
        _assert_words_masked(session)


def _assert_words_masked(session: Session) -> None:
    row = session.scalars(select(SegmentRow)).one()
    words = [w["word"] for w in json.loads(row.words_json)]
    assert words[2:5] == ["****", "****", "****"] and words[5] == "七八九零"
    assert words[-1] == "**************002X"

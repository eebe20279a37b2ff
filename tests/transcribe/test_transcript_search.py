"""Transcript search as QA uses it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recording.db.engine import session_factory
from tests.factories import T0, add_recording, add_transcript
from transcribe.search import SearchError, SearchQuery, search


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        _seed(s)
        yield s


def _seed(s: Session) -> None:
    first = add_recording(s, agent="agent7", debtor_id="D-1", recorded_at=T0)
    add_transcript(
        s,
        first.id,
        [
            ("agent", 1.0, "您好，我是信达资产管理公司的客服小王。"),
            ("debtor", 4.0, "你们又打电话来催还款？"),
            ("agent", 7.5, "请您今天按时还款，否则我们会上门找你。"),
            ("debtor", 12.0, "我的卡号是6222021234567890123"),
        ],
    )
    second = add_recording(s, agent="agent9", debtor_id="D-2", recorded_at=T0 + timedelta(days=1))
    add_transcript(
        s,
        second.id,
        [
            ("agent", 0.5, "Hello, this is Anna from Northwind Collections."),
            ("agent", 3.0, "Please confirm your date of birth."),
            ("debtor", 6.0, "I will pay you on Friday, OK?"),
            ("agent", 9.0, "<script>alert(1)</script> is not a threat"),
        ],
    )
    third = add_recording(s, agent="agent7", debtor_id="D-3", recorded_at=T0 + timedelta(days=2))
    add_transcript(s, third.id, [("agent", 2.0, "我们不会威胁您，请放心。")])


def _found(session: Session, **kwargs: object) -> list[tuple[str, float]]:
    page = search(session, SearchQuery(**kwargs))  # type: ignore[arg-type]
    return [(hit.speaker, hit.start) for hit in page.hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("还款", [("debtor", 4.0), ("agent", 7.5)]),  # two characters: the bigram index
        ("威胁", [("agent", 2.0)]),
        ("王", [("agent", 1.0)]),  # one character
        ("按时还款", [("agent", 7.5)]),  # four characters: the trigram index
        ("上门找你", [("agent", 7.5)]),
        ("date of birth", [("agent", 3.0)]),
        ("DATE OF BIRTH", [("agent", 3.0)]),  # case does not matter
        ("friday", [("debtor", 6.0)]),
        ("ok", [("debtor", 6.0)]),  # a two-letter English word
        ("高利贷", []),
    ],
)
def test_phrases_find_their_segments(session: Session, query: str, expected: list[object]) -> None:
    assert sorted(_found(session, text=query), key=lambda h: h[1]) == expected


def test_hits_carry_the_second_to_play_from_and_a_highlighted_snippet(session: Session) -> None:
    page = search(session, SearchQuery(text="按时还款"))
    (hit,) = page.hits
    assert (hit.start, hit.agent, hit.debtor_id) == (7.5, "agent7", "D-1")
    assert "<mark>按时还款</mark>" in hit.snippet


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"agent": "agent9"}, 4),
        ({"agent": "agent7", "speaker": "debtor"}, 2),
        ({"debtor_id": "D-3"}, 1),
        ({"client_id": "bank-b"}, 0),
        ({"date_from": T0 + timedelta(days=1)}, 5),
        ({"date_from": T0, "date_to": T0 + timedelta(days=1)}, 4),
    ],
)
def test_filters(session: Session, filters: dict[str, object], expected: int) -> None:
    assert len(_found(session, limit=100, **filters)) == expected


def test_pages_are_bounded(session: Session) -> None:
    first = search(session, SearchQuery(limit=5))
    rest = search(session, SearchQuery(limit=5, offset=5))
    assert len(first.hits) == 5 and first.has_more
    assert len(rest.hits) == 4 and not rest.has_more
    assert not {h.segment_id for h in first.hits} & {h.segment_id for h in rest.hits}
    with pytest.raises(SearchError):
        search(session, SearchQuery(limit=1000))
    with pytest.raises(SearchError):
        search(session, SearchQuery(offset=100_000))


def test_card_numbers_are_neither_stored_nor_searchable(session: Session) -> None:
    assert _found(session, text="62220212345") == []
    (hit,) = search(session, SearchQuery(text="卡号")).hits
    assert "6222021234567890123" not in hit.snippet and "0123" in hit.snippet


@pytest.mark.parametrize(
    "hostile",
    ['"', "'; DROP TABLE transcript_segments; --", "NEAR(a b)", "%", "_", "\\", "zz*", "OR 1=1"],
)
def test_hostile_queries_are_just_text(session: Session, hostile: str) -> None:
    assert _found(session, text=hostile) == []
    assert len(_found(session, limit=100)) == 9  # nothing was dropped


def test_markup_in_transcripts_is_escaped(session: Session) -> None:
    (hit,) = search(session, SearchQuery(text="alert")).hits
    assert "<script>" not in hit.snippet and "&lt;script&gt;" in hit.snippet


def test_the_plain_excerpt_and_the_html_snippet_hold_the_same_words() -> None:
    from transcribe.search import excerpt, snippet

    text = "a" * 50 + " pay <now> & later " + "b" * 50
    before, match, after = excerpt(text, "PAY")
    assert (before[0], match, after[-1]) == ("…", "pay", "…")
    assert snippet(text, "PAY") == (
        f"{before}<mark>pay</mark>{after}".replace("&", "&amp;").replace("<now>", "&lt;now&gt;")
    )
    assert excerpt("short", "absent") == ("short", "", "")


def test_a_phrase_matches_only_where_its_words_stand_together(session: Session) -> None:
    """PostgreSQL narrows phrases by trigrams that cross spaces (spaces indexed as `ǀ`):
    words apart, or a transcript that really holds that letter, must still not match."""
    other = add_recording(session, agent="agent5", recorded_at=T0 + timedelta(days=3))
    add_transcript(
        session,
        other.id,
        [("agent", 1.0, "What date? Name of birth town"), ("agent", 2.0, "Field dateǀofǀbirth")],
    )
    assert _found(session, text="date of birth") == [("agent", 3.0)]
    assert _found(session, text="ate of bir") == [("agent", 3.0)]  # parts of words count
    assert _found(session, text="dateǀofǀbirth") == [("agent", 2.0)]
    assert _found(session, text="confirm date") == []


def test_phrase_search_on_postgresql_goes_through_the_joined_trigram_index(
    session: Session,
) -> None:
    """The index (migration 0028) serves only the exact expression the search writes:
    a change to either side would silently fall back to scanning every segment."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's; SQLite uses FTS5")
    executed: list[tuple[str, object]] = []

    def capture(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
        executed.append((sql, params))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        search(session, SearchQuery(text="date of birth"))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (sql, params) = executed[-1]
    connection = session.connection()
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
    plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql, params))  # type: ignore[arg-type]
    assert "ix_transcript_segments_joined_trgm" in plan

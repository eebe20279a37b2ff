"""Transcript search for QA: any phrase, any language, always through an index.

Queries of three or more characters are substring searches over a trigram
index (SQLite FTS5 `trigram`, PostgreSQL `pg_trgm`); shorter ones, which
trigrams cannot answer (还款, 威胁), go to the unigram/bigram token index.
Results come newest first (segments are stored as calls are transcribed).
Every query is bounded (`limit` at most 100, `offset` at most 10,000), so no
request scans two years of calls.

Snippets are masked again (`transcribe.redact.mask_numbers`) as they are
shown: transcripts stored before a masking rule was added (full-width digits,
numbers spoken in groups split by Chinese commas) get it too.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, column, func, literal_column, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from recording.db.engine import as_utc
from recording.models import Recording
from transcribe.models import SegmentRow
from transcribe.redact import mask_numbers

# SQLAlchemy 2.0 and 2.1 spell the generic row type differently; the builder needs neither.
_Rows = Any

#: PostgreSQL's trigram index is built over the text with spaces replaced by
#: this letter (migration 0028), so its trigrams cross word boundaries and a
#: phrase is as selective as its words together; queries must use the same
#: expression, with constants (not bound values) for the planner to match it.
WORD_JOINER = "ǀ"
_JOINED_TEXT = func.replace(
    SegmentRow.text, literal_column("' '"), literal_column(f"'{WORD_JOINER}'")
)

MAX_LIMIT = 100
MAX_OFFSET = 10_000
_CONTEXT = 40


class SearchError(ValueError):
    """A search request outside what the index can answer."""


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None
    agent: str | None = None
    debtor_id: str | None = None
    client_id: str | None = None
    speaker: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    recording_id: str
    segment_id: int
    speaker: str
    start: float  # where the player should seek to
    end: float
    snippet: str  # HTML: escaped text with the match in <mark>, for the console and the API
    agent: str
    debtor_id: str | None
    recorded_at: datetime
    excerpt: str = ""  # the same words as plain text, for the command line


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    limit: int
    offset: int
    has_more: bool


def _fts_phrase(query: str) -> str:
    return '"' + query.replace('"', '""') + '"'


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _statement(query: str, dialect: str) -> _Rows:
    """Segments with their recordings, matching `query`, newest first.

    On SQLite the FTS table drives the query (`ORDER BY rowid DESC` walks its
    index backwards and stops at the limit): measured with a million segments,
    this keeps a term found in a third of all segments under a millisecond,
    where joining the FTS results into the segment table took seconds.
    """
    if not query:
        return (
            select(SegmentRow, Recording)
            .join(Recording, SegmentRow.recording_id == Recording.id)
            .order_by(SegmentRow.id.desc())
        )
    short = len(query) < 3
    if dialect == "sqlite":
        name = "segment_grams" if short else "segment_tri"
        fts = table(name, column("rowid"))
        return (
            select(SegmentRow, Recording)
            .select_from(fts)
            .join(SegmentRow, SegmentRow.id == fts.c.rowid)
            .join(Recording, SegmentRow.recording_id == Recording.id)
            .where(text(f"{name} MATCH :phrase"))
            .order_by(fts.c.rowid.desc())
            .params(phrase=_fts_phrase(query.lower() if short else query))
        )
    condition: ColumnElement[bool]
    if short:
        condition = func.to_tsvector("simple", SegmentRow.grams).op("@@")(
            func.plainto_tsquery("simple", query.lower())
        )
    else:  # the index narrows by joined trigrams; the plain ILIKE keeps hits exact
        pattern = _like_pattern(query)
        condition = and_(
            _JOINED_TEXT.ilike(pattern.replace(" ", WORD_JOINER), escape="\\"),
            SegmentRow.text.ilike(pattern, escape="\\"),
        )
    return (
        select(SegmentRow, Recording)
        .join(Recording, SegmentRow.recording_id == Recording.id)
        .where(condition)
        .order_by(SegmentRow.id.desc())
    )


def excerpt(text_: str, query: str) -> tuple[str, str, str]:
    """The words around the first match of `query` as plain text: (before, match, after).

    `match` is empty when `query` is not found (the segment's start is shown);
    an ellipsis marks where the segment's text was cut.
    """
    at = text_.lower().find(query.lower()) if query else -1
    if at < 0:
        cut = text_[: 2 * _CONTEXT]
        return cut + ("…" if len(text_) > len(cut) else ""), "", ""
    begin, end = max(0, at - _CONTEXT), min(len(text_), at + len(query) + _CONTEXT)
    return (
        ("…" if begin else "") + text_[begin:at],
        text_[at : at + len(query)],
        text_[at + len(query) : end] + ("…" if end < len(text_) else ""),
    )


def snippet(text_: str, query: str) -> str:
    """The excerpt as HTML: escaped, with the match in <mark> (for the console and the API)."""
    before, match, after = excerpt(text_, query)
    marked = f"<mark>{html.escape(match)}</mark>" if match else ""
    return html.escape(before) + marked + html.escape(after)


def search(session: Session, query: SearchQuery) -> SearchPage:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise SearchError(f"limit must be 1-{MAX_LIMIT}")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise SearchError(f"offset must be 0-{MAX_OFFSET}; narrow the search with filters")
    phrase = " ".join(query.text.split())
    statement = _statement(phrase, session.get_bind().dialect.name)
    for column_, value in (
        (Recording.agent, query.agent),
        (Recording.debtor_id, query.debtor_id),
        (Recording.client_id, query.client_id),
        (SegmentRow.speaker, query.speaker),
    ):
        if value is not None:
            statement = statement.where(column_ == value)
    if query.date_from is not None:
        statement = statement.where(Recording.recorded_at >= query.date_from)
    if query.date_to is not None:
        statement = statement.where(Recording.recorded_at < query.date_to)
    statement = statement.limit(query.limit + 1).offset(query.offset)
    rows = session.execute(statement).all()
    hits = [
        Hit(
            recording_id=segment.recording_id,
            segment_id=segment.id,
            speaker=segment.speaker,
            start=segment.start_s,
            end=segment.end_s,
            snippet=snippet(mask_numbers(segment.text), phrase),
            excerpt="".join(excerpt(mask_numbers(segment.text), phrase)),
            agent=recording.agent,
            debtor_id=recording.debtor_id,
            recorded_at=as_utc(recording.recorded_at),
        )
        for segment, recording in rows[: query.limit]
    ]
    return SearchPage(hits, query.limit, query.offset, has_more=len(rows) > query.limit)

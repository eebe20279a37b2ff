"""Scoring stored transcripts and keeping the results: the database edge of QA.

A transcript is scored once per pack. The result JSON keeps the machine's
verdict as it was; its flags are copied into rows that reviewers move through
the review states (`qa_scoring.review`). Flag text comes from the stored
segments, which were masked when the transcript was saved, and is masked
again here so a flag never carries a card or ID number whatever produced it.

A transcript the checker refuses (a malformed stored segment) gets a result
row with the error and no score: a permanent fault, recorded once, instead
of a worker retrying it on every poll.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qa_scoring.check import check_transcript
from qa_scoring.embedding import Embedder
from qa_scoring.errors import TranscriptError
from qa_scoring.models import FlagState, QaFlag, QaResult
from qa_scoring.pack import Pack, load_pack
from qa_scoring.rules import Flag
from recording.models import Recording
from transcribe.models import SegmentRow, TranscriptRow
from transcribe.redact import mask_numbers
from transcribe.result import Segment, Speaker, Transcript, Word

__all__ = ["flag_score", "load_stored_transcript", "pending_transcripts", "score_transcript"]


def load_stored_transcript(session: Session, transcript: TranscriptRow) -> Transcript:
    """The transcript as `dialguard transcribe` made it, rebuilt from its stored (masked) rows."""
    rows = session.scalars(
        select(SegmentRow)
        .where(SegmentRow.transcript_id == transcript.id)
        .order_by(SegmentRow.start_s, SegmentRow.id)
    ).all()
    segments = []
    for row in rows:
        words = tuple(
            Word(float(w["start"]), float(w["end"]), str(w["word"]), float(w["probability"]))
            for w in json.loads(row.words_json or "[]")
        )
        segments.append(
            Segment(row.start_s, row.end_s, Speaker(row.speaker), row.text, row.confidence, words)
        )
    return Transcript(transcript.language, transcript.duration_s, transcript.model, tuple(segments))


def flag_score(flag: Flag) -> float:
    """What a reviewer sorts by: the cosine of a meaning-based flag, else the ASR confidence."""
    return round(flag.score if flag.score is not None else flag.confidence, 4)


def _existing(session: Session, transcript_id: int, pack: str) -> QaResult | None:
    return session.scalar(
        select(QaResult).where(QaResult.transcript_id == transcript_id, QaResult.pack == pack)
    )


def score_transcript(
    session: Session,
    transcript_id: int,
    pack: Pack | str,
    now: datetime,
    embedder: Embedder | None = None,
) -> QaResult:
    """Check one stored transcript against `pack` and store the result and its flags.

    Idempotent: a transcript already scored with this pack returns the stored
    result unchanged, including when another worker stored it a moment ago.
    """
    if not isinstance(pack, Pack):
        pack = load_pack(pack)
    found = _existing(session, transcript_id, pack.name)
    if found is not None:
        return found
    transcript = session.get(TranscriptRow, transcript_id)
    if transcript is None:
        raise LookupError(f"no transcript {transcript_id}")
    recording = session.get(Recording, transcript.recording_id)
    if recording is None:  # the foreign key makes this impossible; a clear message if not
        raise LookupError(f"transcript {transcript_id} has no recording")
    result = QaResult(
        recording_id=transcript.recording_id,
        transcript_id=transcript_id,
        pack=pack.name,
        pack_version=str(pack.version),
        created_at=now,
    )
    try:
        checked = check_transcript(
            load_stored_transcript(session, transcript), pack, embedder=embedder
        )
    except TranscriptError as exc:
        result.score = None
        result.error = str(exc)[:500]
        result.result_json = json.dumps({"error": str(exc)}, ensure_ascii=False)
        flags = []
    else:
        result.score = checked.score
        result.error = None
        result.result_json = json.dumps(checked.to_json(), ensure_ascii=False)
        flags = list(checked.flags)
    session.add(result)
    try:
        session.flush()
        for flag in flags:
            session.add(
                QaFlag(
                    result_id=result.id,
                    recording_id=recording.id,
                    agent=recording.agent,
                    rule=flag.rule,
                    category=flag.category,
                    severity=flag.severity,
                    speaker=flag.speaker,
                    start_s=flag.start,
                    end_s=flag.end,
                    text=mask_numbers(flag.text),
                    needs_listening=flag.needs_listening,
                    score=flag_score(flag),
                    state=FlagState.OPEN,
                    updated_at=now,
                )
            )
        session.commit()
    except IntegrityError:  # another worker stored it first: theirs stands
        session.rollback()
        found = _existing(session, transcript_id, pack.name)
        if found is None:
            raise
        return found
    return result


def pending_transcripts(
    session: Session, pack: str, limit: int = 20, exclude: Collection[int] = ()
) -> list[int]:
    """Ids of transcripts not yet scored with `pack`, oldest first; `exclude` ones skipped.

    Oldest first so a backlog is worked through in the order calls were made.
    """
    scored = select(QaResult.transcript_id).where(QaResult.pack == pack)
    query = (
        select(TranscriptRow.id)
        .where(TranscriptRow.id.not_in(scored))
        .order_by(TranscriptRow.created_at, TranscriptRow.id)
        .limit(limit)
    )
    if exclude:
        query = query.where(TranscriptRow.id.not_in(list(exclude)))
    return list(session.scalars(query))

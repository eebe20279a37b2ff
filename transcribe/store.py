"""Storing transcripts: masked once, indexed for search, kept per model."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from transcribe.models import SegmentRow, TranscriptRow
from transcribe.phrases import HAN, has_han
from transcribe.redact import has_masked, mask_numbers, mask_words
from transcribe.result import Transcript

_TOKENS = re.compile(rf"[{HAN}]+|[^\W_]+")


def grams(text: str) -> str:
    """Unigram and bigram tokens of CJK runs, lower-cased words otherwise.

    Chinese has no spaces, so a word index sees a whole clause as one token
    and a trigram index cannot answer two-character words like 还款; these
    tokens can.
    """
    tokens: list[str] = []
    for match in _TOKENS.finditer(text.lower()):
        run = match.group()
        if has_han(run[0]):
            tokens.extend(run)
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.append(run)
    return " ".join(tokens)


def save_transcript(
    session: Session,
    recording_id: str,
    transcript: Transcript,
    model_version: str,
    now: datetime,
) -> TranscriptRow:
    """Store `transcript` for `recording_id`; a second run of the same model replaces nothing.

    Re-transcribing with another model adds a transcript beside the earlier one.
    """
    existing = session.scalar(
        select(TranscriptRow).where(
            TranscriptRow.recording_id == recording_id, TranscriptRow.model == transcript.model
        )
    )
    if existing is not None:
        return existing
    row = TranscriptRow(
        recording_id=recording_id,
        model=transcript.model,
        model_version=model_version,
        language=transcript.language,
        duration_s=transcript.duration,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for segment in transcript.segments:
        text = mask_numbers(segment.text)
        words = [asdict(w) for w in segment.words]
        if has_masked(text):  # a number spoken across words: masked as the words' joined text
            for word, masked in zip(
                words, mask_words([str(w["word"]) for w in words]), strict=True
            ):
                word["word"] = masked
        session.add(
            SegmentRow(
                transcript_id=row.id,
                recording_id=recording_id,
                speaker=segment.speaker.value,
                start_s=segment.start,
                end_s=segment.end,
                text=text,
                grams=grams(text),
                confidence=segment.confidence,
                words_json=json.dumps(words, ensure_ascii=False),
            )
        )
    session.commit()
    return row

"""Rows for tests that need recordings and transcripts without audio (real tables, real DB)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from recording.models import Recording, RecordingStatus
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.store import save_transcript

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def add_recording(
    session: Session,
    agent: str = "agent7",
    debtor_id: str | None = "D-1",
    recorded_at: datetime = T0,
    client_id: str | None = "bank-a",
    duration: float = 180.0,
) -> Recording:
    rid = uuid.uuid4().hex
    row = Recording(
        id=rid,
        call_id=f"call-{rid[:8]}",
        agent=agent,
        debtor_id=debtor_id,
        client_id=client_id,
        recorded_at=recorded_at,
        duration_s=duration,
        channels=2,
        content_type="audio/ogg; codecs=opus",
        status=RecordingStatus.STORED,
        object_key=f"x/{rid}",
        plaintext_size=1,
        ciphertext_size=1,
        ciphertext_sha256="0" * 64,
        retain_until=recorded_at.replace(year=recorded_at.year + 2),
        legal_hold=False,
        upload_attempts=0,
        created_at=recorded_at,
    )
    session.add(row)
    session.commit()
    return row


def add_transcript(
    session: Session,
    recording_id: str,
    lines: list[tuple[str, float, str]],
    model: str = "base",
    probability: float = 0.9,
) -> None:
    """lines: (speaker 'agent'|'debtor', start second, text); words heard at `probability`."""
    segments = tuple(
        Segment(
            start,
            start + 2.0,
            Speaker(speaker),
            text,
            probability,
            tuple(Word(start, start + 0.5, w, probability) for w in text.split()),
        )
        for speaker, start, text in lines
    )
    save_transcript(session, recording_id, Transcript("zh", 180.0, model, segments), "test", T0)

"""Plain result types of a transcription, as stored, searched and printed."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Speaker(enum.StrEnum):
    AGENT = "agent"
    DEBTOR = "debtor"


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One stretch of one party's speech; times are seconds from the start of the call."""

    start: float
    end: float
    speaker: Speaker
    text: str
    confidence: float  # mean word probability: QA marks flags on weak words for listening
    words: tuple[Word, ...] = field(default=())


@dataclass(frozen=True)
class Transcript:
    language: str
    duration: float
    model: str
    segments: tuple[Segment, ...]

    def to_json(self, words: bool = False) -> dict[str, Any]:
        """The `dialguard transcribe --json` shape."""
        segments = []
        for segment in self.segments:
            item: dict[str, Any] = {
                "start": round(segment.start, 2),
                "end": round(segment.end, 2),
                "speaker": segment.speaker.value,
                "text": segment.text,
                "confidence": round(segment.confidence, 3),
            }
            if words:
                item["words"] = [asdict(w) for w in segment.words]
            segments.append(item)
        return {
            "language": self.language,
            "duration": round(self.duration, 2),
            "model": self.model,
            "segments": segments,
        }

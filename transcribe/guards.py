"""Guards against Whisper's inventions.

Whisper writes text on silence ("Thank you.") and loops on noise; a
hallucinated word can become a false QA flag against an agent, so a segment
must earn its place. Pure functions, tested table-driven.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

#: Above this, Whisper itself judges the window to be without speech.
NO_SPEECH_PROB = 0.6
#: Below this mean token log-probability the decode is guesswork.
MIN_AVG_LOGPROB = -1.0
#: gzip ratio of a segment's text; loops compress far better than speech.
MAX_COMPRESSION_RATIO = 2.4
#: Mean word probability below which a short segment is dropped.
MIN_SHORT_CONFIDENCE = 0.4

# What Whisper says on silence and music: subtitle credits and politeness.
_STOCK_PHRASES = re.compile(
    r"^\W*(thank you( (very much|for watching))?|thanks for watching|you|bye|"
    r"subtitles? by .*|字幕.*|谢谢(观看|大家)?|请不吝点赞.*|明镜与点点栏目)\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Candidate:
    text: str
    no_speech_prob: float
    avg_logprob: float
    word_confidence: float
    word_count: int


def compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / max(1, len(zlib.compress(data)))


def keep(candidate: Candidate) -> bool:
    text = candidate.text.strip()
    if not text:
        return False
    if candidate.no_speech_prob > NO_SPEECH_PROB and candidate.avg_logprob < MIN_AVG_LOGPROB:
        return False
    if compression_ratio(text) > MAX_COMPRESSION_RATIO:
        return False
    if _STOCK_PHRASES.match(text) and candidate.word_confidence < 0.9:
        return False
    return not (candidate.word_count <= 2 and candidate.word_confidence < MIN_SHORT_CONFIDENCE)

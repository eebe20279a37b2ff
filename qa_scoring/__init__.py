"""QA rules, call scores, sampling and review over transcripts."""

from qa_scoring.check import check_transcript, load_transcript_json, parse_transcript
from qa_scoring.errors import PackError, QaError, TranscriptError
from qa_scoring.eval import EvalReport, evaluate
from qa_scoring.pack import Pack, load_pack, shipped_packs
from qa_scoring.score import CheckResult, compute_score

__all__ = [
    "CheckResult",
    "EvalReport",
    "Pack",
    "PackError",
    "QaError",
    "TranscriptError",
    "check_transcript",
    "compute_score",
    "evaluate",
    "load_pack",
    "load_transcript_json",
    "parse_transcript",
    "shipped_packs",
]

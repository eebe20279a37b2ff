"""QA rules, call scores, call metrics, sampling and review over transcripts."""

from qa_scoring.check import (
    MeasuredCheckResult,
    check_transcript,
    load_transcript_json,
    parse_transcript,
)
from qa_scoring.errors import PackError, QaError, TranscriptError
from qa_scoring.eval import EvalReport, evaluate
from qa_scoring.loudness import LoudnessError, wav_loudness
from qa_scoring.metrics import (
    DEFAULT_THRESHOLDS,
    CallMetrics,
    MetricFlag,
    SpeakerMetrics,
    Thresholds,
    calls_in_window,
    compute_metrics,
    metric_flags,
)
from qa_scoring.pack import Pack, load_pack, shipped_packs
from qa_scoring.score import CheckResult, compute_score

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CallMetrics",
    "CheckResult",
    "EvalReport",
    "LoudnessError",
    "MeasuredCheckResult",
    "MetricFlag",
    "Pack",
    "PackError",
    "QaError",
    "SpeakerMetrics",
    "Thresholds",
    "TranscriptError",
    "calls_in_window",
    "check_transcript",
    "compute_metrics",
    "compute_score",
    "evaluate",
    "load_pack",
    "load_transcript_json",
    "metric_flags",
    "parse_transcript",
    "shipped_packs",
    "wav_loudness",
]

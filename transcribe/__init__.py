"""Speech to text for recorded calls, and the transcript store and search."""

from transcribe.audio import load_channels
from transcribe.engine import EngineChoice, choose_device, load_model
from transcribe.errors import AudioError, ModelNotFound, TranscribeError
from transcribe.model_store import resolve_model
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.transcriber import transcribe_recording
from transcribe.worker import run_transcriber

__all__ = [
    "AudioError",
    "EngineChoice",
    "ModelNotFound",
    "Segment",
    "Speaker",
    "TranscribeError",
    "Transcript",
    "Word",
    "choose_device",
    "load_channels",
    "load_model",
    "resolve_model",
    "run_transcriber",
    "transcribe_recording",
]

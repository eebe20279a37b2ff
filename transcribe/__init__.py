"""Speech to text for recorded calls, and the transcript store and search."""

from transcribe.engine import EngineChoice, choose_device, load_model
from transcribe.errors import ModelNotFound, TranscribeError
from transcribe.model_store import resolve_model
from transcribe.worker import run_transcriber

__all__ = [
    "EngineChoice",
    "ModelNotFound",
    "TranscribeError",
    "choose_device",
    "load_model",
    "resolve_model",
    "run_transcriber",
]

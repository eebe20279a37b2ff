"""The speech-to-text engine: faster-whisper on CPU (int8) or CUDA (float16)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transcribe.errors import ModelNotFound

Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class EngineChoice:
    device: Literal["cpu", "cuda"]
    compute_type: str


def choose_device(requested: Device, cuda_devices: int) -> EngineChoice:
    """int8 is the fast exact-enough choice on CPU; GPUs want float16."""
    if requested == "cuda" or (requested == "auto" and cuda_devices > 0):
        return EngineChoice("cuda", "float16")
    return EngineChoice("cpu", "int8")


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no CUDA runtime at all is the common case on CPU hosts
        return 0


def load_model(model_dir: Path, device: Device = "auto", cpu_threads: int = 0) -> Any:
    """A loaded `faster_whisper.WhisperModel`; a broken model is a ModelNotFound."""
    from faster_whisper import WhisperModel

    choice = choose_device(device, cuda_device_count() if device != "cpu" else 0)
    try:
        return WhisperModel(
            str(model_dir),
            device=choice.device,
            compute_type=choice.compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelNotFound(
            f"Whisper model at {model_dir} does not load ({str(exc)[:120]})",
            hint="reinstall the model package or set DIALGUARD_WHISPER_MODEL",
        ) from exc


def batch_size_for(requested: int, device: Literal["cpu", "cuda"]) -> int:
    """0 means sequential decoding. `-1` (auto) batches on a GPU only: there a batch of
    windows decodes in about the time of one, while on a CPU the same work is merely
    reordered and needs more memory."""
    if requested >= 0:
        return requested
    return 16 if device == "cuda" else 0


class BatchedModel:
    """faster-whisper's batched pipeline behind the model's own `transcribe` call."""

    def __init__(self, model: Any, batch_size: int) -> None:
        from faster_whisper import BatchedInferencePipeline

        self.model = model
        self.batch_size = batch_size
        self._pipeline = BatchedInferencePipeline(model=model)

    def transcribe(self, audio: Any, **options: Any) -> Any:
        return self._pipeline.transcribe(audio, batch_size=self.batch_size, **options)

    def detect_language(self, **options: Any) -> Any:
        """The model's own detection: the transcriber picks the prompt before decoding."""
        return self.model.detect_language(**options)


def engine_for(model: Any, batch_size: int = -1) -> Any:
    """The loaded model as the transcriber uses it: batched where that helps."""
    size = batch_size_for(batch_size, "cuda" if model.model.device == "cuda" else "cpu")
    return BatchedModel(model, size) if size > 0 else model


def load_engine(model_dir: Path, device: Device = "auto", batch_size: int = -1) -> Any:
    """The model to transcribe with: batched where that helps (see `batch_size_for`)."""
    return engine_for(load_model(model_dir, device), batch_size)

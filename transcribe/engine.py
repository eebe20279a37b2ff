"""The speech-to-text engine: faster-whisper on CPU (int8) or CUDA (float16)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
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


#: Windows of a call decoded together. On a CPU a call rarely has more (a window holds
#: up to 30 s of one party's speech); on a GPU a batch decodes in about the time of one.
AUTO_BATCH = {"cpu": 8, "cuda": 16}
#: faster-whisper's default beam: greedy (1) is faster and hears less (bench/README.md).
DEFAULT_BEAM = 5


def batch_size_for(requested: int, device: Literal["cpu", "cuda"]) -> int:
    """0 means sequential decoding, window after window, channel after channel; `-1`
    (auto) batches on every device: both parties' windows in one pass measured 1.6x
    faster than sequential on a 2-core CPU (bench/README.md)."""
    if requested >= 0:
        return requested
    return AUTO_BATCH[device]


def threads_per_worker(requested: int, workers: int, cores: int) -> int:
    """CPU threads for each transcription worker's model.

    Workers that each take every core fight over them: on 2 cores, two workers of one
    thread transcribed 1.6 times what one worker of two threads did (bench/README.md).
    """
    if requested > 0:
        return requested
    return max(1, cores // max(1, workers))


class BatchedModel:
    """faster-whisper's batched pipeline behind the model's own `transcribe` call.

    With `language=None` the language is detected on the encoder output of the first
    batch's first window, which the decoding needs anyway, rather than by encoding that
    window a second time first (as faster-whisper does: about an eighth of the time on a
    CPU); `prompts[language]` then becomes the initial prompt and `detected` says what was
    found once the segments are consumed. One call at a time per loaded model (the
    first batch lends the model its encoder output).
    """

    def __init__(self, model: Any, batch_size: int, beam_size: int = DEFAULT_BEAM) -> None:
        self.model = model
        self.batch_size = batch_size
        self.beam_size = beam_size
        self._pipeline = _pipeline(model)

    @property
    def detected(self) -> str | None:
        found: str | None = self._pipeline.detected
        return found

    def transcribe(
        self, audio: Any, *, prompts: Mapping[str, str] = MappingProxyType({}), **options: Any
    ) -> Any:
        pipeline = self._pipeline
        pipeline.detected = None
        pipeline.detect = options.get("language") is None and self.model.model.is_multilingual
        pipeline.prompts = prompts
        if pipeline.detect:
            options["language"] = "en"  # a stand-in until the first batch says which
        return pipeline.transcribe(audio, batch_size=self.batch_size, **options)

    def detect_language(self, **options: Any) -> Any:
        """The model's own detection: the sequential transcriber picks the prompt first."""
        return self.model.detect_language(**options)


def _pipeline(model: Any) -> Any:
    """A `BatchedInferencePipeline` that can detect the language in its first batch."""
    from faster_whisper import BatchedInferencePipeline

    class Pipeline(BatchedInferencePipeline):  # type: ignore[misc]  # untyped library
        detect = False
        detected: str | None = None
        prompts: Mapping[str, str] = MappingProxyType({})

        def generate_segment_batched(self, features: Any, tokenizer: Any, options: Any) -> Any:
            if not self.detect:
                return super().generate_segment_batched(features, tokenizer, options)
            self.detect = False
            encoder_output = self.model.encode(features)
            first = _first_window(encoder_output)  # held here: the view does not own it
            token = self.model.model.detect_language(first[0])[0][0][0]  # "<|en|>"
            language = str(token)[2:-2]
            # The tokenizer and options go on to every later batch and to word alignment.
            tokenizer.language = tokenizer.tokenizer.token_to_id(token)
            tokenizer.language_code = language
            options.initial_prompt = self.prompts.get(language, options.initial_prompt)
            self.detected = language
            self.model.encode = lambda _features: encoder_output  # encoded once, used twice
            try:
                return super().generate_segment_batched(features, tokenizer, options)
            finally:
                del self.model.encode  # the model's own method again

    return Pipeline(model=model)


def _first_window(encoded: Any) -> tuple[Any, Any]:
    """The first window's encoder output (a view, and the array behind it).

    Detection needs no more, and on a CPU it costs a decoder pass per window
    given: a call's first batch of three windows took 0.27 s against 0.07 s.
    """
    if encoded.device != "cpu" or encoded.shape[0] == 1:
        return encoded, None
    import ctranslate2
    import numpy as np

    array = np.ascontiguousarray(np.asarray(encoded)[:1])
    return ctranslate2.StorageView.from_array(array), array


def engine_for(model: Any, batch_size: int = -1, beam_size: int = DEFAULT_BEAM) -> Any:
    """The loaded model as the transcriber uses it: batched unless told otherwise."""
    size = batch_size_for(batch_size, "cuda" if model.model.device == "cuda" else "cpu")
    return BatchedModel(model, size, beam_size) if size > 0 else model


def load_engine(
    model_dir: Path,
    device: Device = "auto",
    batch_size: int = -1,
    beam_size: int = DEFAULT_BEAM,
    cpu_threads: int = 0,
) -> Any:
    """The model to transcribe with (see `batch_size_for`, `threads_per_worker`)."""
    return engine_for(load_model(model_dir, device, cpu_threads), batch_size, beam_size)

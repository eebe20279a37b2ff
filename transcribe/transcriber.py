"""Turning a call recording into a speaker-labelled transcript.

Each channel is transcribed on its own, so the speaker of every segment is
known from the wiring (agent left, debtor right) rather than guessed by
diarisation. The language is detected once, on the agent's side, where the
speech is longest and clearest, and used for both parties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from transcribe.audio import SAMPLE_RATE, load_channels
from transcribe.guards import Candidate, keep
from transcribe.result import Segment, Speaker, Transcript, Word

#: A channel quieter than this (RMS of full-scale 1.0) holds no speech worth decoding.
SILENT_RMS = 0.003

#: Whisper writes Mandarin in traditional characters about half the time (還款, 這張)
#: unless its prompt is simplified Chinese; this one is checked on these machines
#: (shared/FACTS.md). It steers the first window of each channel (faster-whisper
#: drops the prompt after a window when it does not condition on previous text),
#: which is why QA also converts whatever traditional text remains
#: (transcribe.normalise).
INITIAL_PROMPTS = {"zh": "以下是普通话的句子。"}


def _language_of(model: Any, audio: npt.NDArray[np.float32]) -> str | None:
    """The channel's language, found before decoding so the right prompt goes with it."""
    detect = getattr(model, "detect_language", None)
    if detect is None:
        return None
    try:
        language, _, _ = detect(audio=audio, vad_filter=True)
    except (ValueError, IndexError):  # no speech for the VAD: decoding will say so itself
        return None
    return str(language) if language else None


def _decode_channel(
    model: Any, audio: npt.NDArray[np.float32], speaker: Speaker, language: str | None
) -> tuple[list[Segment], str | None]:
    if audio.size == 0 or float(np.sqrt(np.mean(np.square(audio)))) < SILENT_RMS:
        return [], language
    if language is None:
        language = _language_of(model, audio)
    raw_segments, info = model.transcribe(
        audio,
        language=language,
        initial_prompt=INITIAL_PROMPTS.get(language or ""),
        vad_filter=True,
        word_timestamps=True,
        condition_on_previous_text=False,  # one bad window must not poison the next
        beam_size=5,
    )
    kept: list[Segment] = []
    for raw in raw_segments:
        words = tuple(
            Word(round(w.start, 2), round(w.end, 2), w.word.strip(), round(w.probability, 3))
            for w in raw.words or ()
        )
        confidence = sum(w.probability for w in words) / len(words) if words else 0.0
        candidate = Candidate(
            text=raw.text,
            no_speech_prob=raw.no_speech_prob,
            avg_logprob=raw.avg_logprob,
            word_confidence=confidence,
            word_count=len(words),
        )
        if keep(candidate):
            kept.append(Segment(raw.start, raw.end, speaker, raw.text.strip(), confidence, words))
    return kept, language or info.language


def transcribe_recording(
    model: Any, model_name: str, path: Path, language: str | None = None
) -> Transcript:
    channels = load_channels(path)
    duration = max(len(audio) for _, audio in channels) / SAMPLE_RATE
    segments: list[Segment] = []
    detected = language
    for speaker, audio in channels:
        found, detected = _decode_channel(model, audio, speaker, detected)
        segments.extend(found)
    segments.sort(key=lambda s: (s.start, s.speaker.value))
    return Transcript(
        language=detected or "",
        duration=duration,
        model=model_name,
        segments=tuple(segments),
    )

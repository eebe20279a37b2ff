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
from transcribe.engine import BatchedModel
from transcribe.guards import Candidate, keep
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.timing import find_speech, turns

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
    speech = find_speech(audio)
    if not speech.pieces:
        return [], language
    if language is None:
        language = _language_of(model, audio)
    options: dict[str, Any] = {}
    if isinstance(model, BatchedModel):  # whole pieces per window, not a cut every 30 s
        options["clip_timestamps"] = speech.windows()
    raw_segments, info = model.transcribe(
        speech.cut(audio),  # the VAD's work is done here, where both timelines are known
        language=language,
        initial_prompt=INITIAL_PROMPTS.get(language or ""),
        vad_filter=False,
        word_timestamps=True,
        condition_on_previous_text=False,  # one bad window must not poison the next
        beam_size=5,
        **options,
    )
    kept: list[Segment] = []
    for raw in raw_segments:
        raw_words = list(raw.words or ())
        probabilities = [w.probability for w in raw_words]
        candidate = Candidate(
            text=raw.text,
            no_speech_prob=raw.no_speech_prob,
            avg_logprob=raw.avg_logprob,
            word_confidence=sum(probabilities) / len(probabilities) if probabilities else 0.0,
            word_count=len(raw_words),
        )
        if not keep(candidate):
            continue
        if not raw_words:
            start, end = speech.place(raw.start, raw.end)
            kept.append(Segment(start, end, speaker, raw.text.strip(), 0.0))
            continue
        times = [speech.place(w.start, w.end) for w in raw_words]
        runs = turns(times)
        for run in runs:
            words = tuple(
                Word(
                    round(times[i][0], 2),
                    round(times[i][1], 2),
                    raw_words[i].word.strip(),
                    round(raw_words[i].probability, 3),
                )
                for i in run
            )
            text = (
                raw.text.strip()
                if len(runs) == 1
                else "".join(raw_words[i].word for i in run).strip()
            )
            confidence = sum(w.probability for w in words) / len(words)
            kept.append(Segment(words[0].start, words[-1].end, speaker, text, confidence, words))
    return kept, language or info.language


def _join(words: list[str]) -> str:
    """Words as text again: spaced in English, run together in Chinese (no spaces there)."""
    text = ""
    for word in words:
        spaced = text and text[-1].isascii() and word[:1].isascii()
        text += f" {word}" if spaced else word
    return text


def _interleave(segments: list[Segment]) -> list[Segment]:
    """Every party's segments in the order they were spoken.

    A segment is cut between two of its words where the other party began
    speaking, so a reply said in a short pause (under `TURN_GAP`) reads after
    what it answers and before what follows it; then all sort by start.
    """
    starts = sorted((s.start, s.speaker) for s in segments)
    ordered: list[Segment] = []
    for segment in segments:
        others = [t for t, who in starts if who is not segment.speaker]
        words = segment.words
        cuts = [
            i
            for i in range(1, len(words))
            if any(words[i - 1].start < t <= words[i].start for t in others)
        ]
        if not cuts:
            ordered.append(segment)
            continue
        for a, b in zip([0, *cuts], [*cuts, len(words)], strict=True):
            part = words[a:b]
            ordered.append(
                Segment(
                    part[0].start,
                    part[-1].end,
                    segment.speaker,
                    _join([w.word for w in part]),
                    sum(w.probability for w in part) / len(part),
                    part,
                )
            )
    ordered.sort(key=lambda s: (s.start, s.speaker.value))
    return ordered


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
    return Transcript(
        language=detected or "",
        duration=duration,
        model=model_name,
        segments=tuple(_interleave(segments)),
    )

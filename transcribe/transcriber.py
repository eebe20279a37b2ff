"""Turning a call recording into a speaker-labelled transcript.

Each channel is transcribed on its own, so the speaker of every segment is
known from the wiring (agent left, debtor right) rather than guessed by
diarisation. The language is detected once, on the agent's side, where the
speech is longest and clearest, and used for both parties. With a batched
engine (the default) both channels' windows are decoded in one pass.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from transcribe.audio import SAMPLE_RATE, load_channels
from transcribe.engine import DEFAULT_BEAM, BatchedModel
from transcribe.guards import Candidate, keep
from transcribe.result import Segment, Speaker, Transcript, Word
from transcribe.timing import SpeechMap, find_speech, turns

#: A channel quieter than this (RMS of full-scale 1.0) holds no speech worth decoding.
SILENT_RMS = 0.003

#: Whisper writes Mandarin in traditional characters about half the time (還款, 這張)
#: unless its prompt is simplified Chinese; this one is checked on these machines
#: (shared/FACTS.md). It steers the first window of each channel (faster-whisper
#: drops the prompt after a window when it does not condition on previous text),
#: which is why QA also converts whatever traditional text remains
#: (transcribe.normalise).
INITIAL_PROMPTS = {"zh": "以下是普通话的句子。"}


def _language_of(model: Any, speech: npt.NDArray[np.float32]) -> str | None:
    """The language of a channel's speech (silences already cut out), found before
    decoding so the right prompt goes with it."""
    detect = getattr(model, "detect_language", None)
    if detect is None:
        return None
    try:
        language, _, _ = detect(audio=speech, vad_filter=False)
    except (ValueError, IndexError):  # too little audio: decoding will say so itself
        return None
    return str(language) if language else None


@dataclass(frozen=True)
class _Channel:
    """One party's speech, ready to decode: the cut audio and how its times map back."""

    speaker: Speaker
    speech: SpeechMap
    cut: npt.NDArray[np.float32]


def _channel(speaker: Speaker, audio: npt.NDArray[np.float32]) -> _Channel | None:
    """None for a channel with nothing worth decoding (silent, or no speech for the VAD)."""
    if audio.size == 0 or float(np.sqrt(np.mean(np.square(audio)))) < SILENT_RMS:
        return None
    speech = find_speech(audio)
    if not speech.pieces:
        return None
    return _Channel(speaker, speech, speech.cut(audio))


def _options(language: str | None, beam_size: int) -> dict[str, Any]:
    return {
        "language": language,
        "initial_prompt": INITIAL_PROMPTS.get(language or ""),
        "vad_filter": False,  # the VAD's work is done here, where both timelines are known
        "word_timestamps": True,
        "condition_on_previous_text": False,  # one bad window must not poison the next
        "beam_size": beam_size,
    }


def _segments(raw_segments: Any, channel: _Channel, offset: float = 0.0) -> list[Segment]:
    """Whisper's segments of one channel as kept segments on the recording's timeline.

    `offset` is where the channel's cut audio starts in what Whisper was given.
    """
    speaker, speech = channel.speaker, channel.speech
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
            start, end = speech.place(raw.start - offset, raw.end - offset)
            kept.append(Segment(start, end, speaker, raw.text.strip(), 0.0))
            continue
        times = [speech.place(w.start - offset, w.end - offset) for w in raw_words]
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
    return kept


def _decode_each(
    model: Any, channels: list[_Channel], language: str | None, beam_size: int
) -> tuple[list[Segment], str | None]:
    """One channel after the other, each in faster-whisper's sequential windows."""
    segments: list[Segment] = []
    for channel in channels:
        raw_segments, info = model.transcribe(channel.cut, **_options(language, beam_size))
        segments.extend(_segments(raw_segments, channel))
        language = language or info.language
    return segments, language


def _decode_together(
    model: BatchedModel, channels: list[_Channel], language: str | None
) -> tuple[list[Segment], str | None]:
    """Both parties' windows decoded in one batched pass.

    Each window holds one party's speech only (joining the parties' speech in a
    window made Whisper mishear the first words after a change of speaker, see
    bench/README.md), but the windows of both channels share the batches, so a
    call's encoder and decoder steps run together rather than channel by channel.
    It decodes without timestamp tokens, the pipeline's default: with them a window's
    last sentence was lost, because a batch does not decode on from the last timestamp
    as sequential decoding does; word alignment times the words either way.
    """
    offsets: list[float] = []
    windows: list[dict[str, float]] = []
    at = 0.0
    for channel in channels:
        offsets.append(at)
        windows += [
            {"start": at + w["start"], "end": at + w["end"]} for w in channel.speech.windows()
        ]
        at += len(channel.cut) / SAMPLE_RATE
    raw_segments, info = model.transcribe(
        np.concatenate([c.cut for c in channels]),
        clip_timestamps=windows,
        prompts=INITIAL_PROMPTS,  # detected on the first window: the agent's where there is one
        **_options(language, model.beam_size),
    )
    by_channel: list[list[Any]] = [[] for _ in channels]
    for raw in raw_segments:  # a segment never spans two windows, so never two channels
        by_channel[max(0, bisect_right(offsets, (raw.start + raw.end) / 2) - 1)].append(raw)
    segments: list[Segment] = []
    for channel, offset, raws in zip(channels, offsets, by_channel, strict=True):
        segments.extend(_segments(raws, channel, offset))
    return segments, language or model.detected or info.language


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
    loaded = load_channels(path)
    duration = max(len(audio) for _, audio in loaded) / SAMPLE_RATE
    channels = [c for c in (_channel(speaker, audio) for speaker, audio in loaded) if c]
    segments: list[Segment] = []
    if channels:
        if isinstance(model, BatchedModel):
            segments, language = _decode_together(model, channels, language)
        else:
            if language is None:  # on the first party heard: the agent's side where there is one
                language = _language_of(model, channels[0].cut)
            segments, language = _decode_each(model, channels, language, DEFAULT_BEAM)
    return Transcript(
        language=language or "",
        duration=duration,
        model=model_name,
        segments=tuple(_interleave(segments)),
    )

"""Where each word was spoken, on the recording's own timeline.

Whisper is given one channel's speech with the silences cut out (voice
activity detection), so it decodes a 60 s call in a window or two rather
than in every 30 s of it. Its times are then times in that cut audio, and
mapping them back is where faster-whisper went wrong by seconds:

- it maps a word by the cut-out piece its middle falls in, and Whisper
  stretches a word that follows a pause back over the pause, so a short word
  after a removed silence ("I") could be mapped with the earlier piece's
  offset and land in the silence before, up to the whole silence early;
- each piece is padded with 0.4 s of the silence around it (the VAD's default
  `speech_pad_ms`), and Whisper starts the first word of a piece where the
  padding starts: every turn began 0.3 to 0.4 s early;
- the batched pipeline decodes each ≤ 30 s group of pieces as one segment,
  so one segment spanned turns a minute apart and, timed from its first word,
  sorted the other party's answers after it.

So the cutting is done here, where both timelines are known: the speech is
found once at a fine grain (Silero, no padding), grouped into the pieces
Whisper decodes (pauses under 2 s kept, 0.4 s of padding, as faster-whisper
does), and each word is mapped back through the piece it mostly lies in,
clamped to it, and its start moved onto speech when it begins in silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transcribe.audio import SAMPLE_RATE

#: Pauses shorter than this stay inside one decoded piece (faster-whisper's own default):
#: Whisper reads a sentence with its commas better than in fragments.
KEEP_PAUSE = 2.0
#: Silence kept around each decoded piece (faster-whisper's `speech_pad_ms`), so that
#: a soft first or last sound is not cut off.
PAD = 0.4
#: The longest audio one decoding window holds.
WINDOW = 30.0
#: A pause in one party's words this long (seconds) ends a segment: a flag then seeks
#: to the sentence it is on, not to one said half a minute before. QA cuts its turns
#: at the same gap (qa_scoring.check.TURN_GAP).
TURN_GAP = 1.5


@dataclass(frozen=True)
class Piece:
    """A stretch of the recording Whisper decodes, and where it sits in the cut audio."""

    start: float
    end: float
    at: float  # start in the cut audio

    @property
    def cut_end(self) -> float:
        return self.at + self.end - self.start


@dataclass(frozen=True)
class SpeechMap:
    """One channel's speech: what is decoded, and how its times map back."""

    speech: tuple[tuple[float, float], ...]  # where the VAD hears speech, unpadded, in seconds
    pieces: tuple[Piece, ...]

    def cut(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The audio Whisper decodes: the pieces end to end."""
        parts = [
            audio[round(p.start * SAMPLE_RATE) : round(p.end * SAMPLE_RATE)] for p in self.pieces
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def windows(self) -> list[dict[str, float]]:
        """Whole pieces grouped into ≤ 30 s windows of the cut audio, for batched decoding.

        faster-whisper's batched pipeline cuts audio given without windows every 30 s,
        through words; pieces are never longer than a window (see `speech_map`).
        """
        groups: list[dict[str, float]] = []
        for piece in self.pieces:
            if groups and piece.cut_end - groups[-1]["start"] <= WINDOW:
                groups[-1]["end"] = piece.cut_end
            else:
                groups.append({"start": piece.at, "end": piece.cut_end})
        return groups

    def place(self, start: float, end: float) -> tuple[float, float]:
        """A word's times in the cut audio as times in the recording.

        The word belongs to the piece it overlaps most (on a tie the later: Whisper
        stretches a word back over the pause before it, not forward), is clamped to
        that piece, and starts no earlier than the speech the VAD heard in it.
        """
        if not self.pieces:
            return start, end
        overlaps = [min(end, p.cut_end) - max(start, p.at) for p in self.pieces]
        best = max(range(len(self.pieces)), key=lambda i: (overlaps[i], i))
        if overlaps[best] <= 0:  # a zero-length word: the piece it sits in or before
            best = next((i for i, p in enumerate(self.pieces) if start < p.cut_end), best)
        piece = self.pieces[best]
        shift = piece.start - piece.at
        start = min(max(start, piece.at), piece.cut_end) + shift
        end = min(max(end, piece.at), piece.cut_end) + shift
        return self._onto_speech(start, max(start, end))

    def _onto_speech(self, start: float, end: float) -> tuple[float, float]:
        """A word starting in silence (the padding, a pause) starts where speech does."""
        for s, e in self.speech:
            if s <= start < e:
                return start, end
            if start < s < end:
                return s, end
            if s >= end:
                break
        return start, end


def speech_map(speech: Sequence[tuple[float, float]], duration: float) -> SpeechMap:
    """The pieces to decode, from where the VAD heard speech (seconds, unpadded, sorted).

    Pauses under `KEEP_PAUSE` are kept, each piece is padded by `PAD` within the
    recording, and a piece longer than a window is cut at its longest inner pause.
    """
    groups: list[list[tuple[float, float]]] = []
    for span in speech:
        if groups and span[0] - groups[-1][-1][1] < KEEP_PAUSE:
            groups[-1].append(span)
        else:
            groups.append([span])
    fitted: list[list[tuple[float, float]]] = []
    longest = WINDOW - 2 * PAD
    while groups:
        group = groups.pop(0)
        if group[-1][1] - group[0][0] <= longest:
            fitted.append(group)
        elif len(group) > 1:
            cut = max(range(1, len(group)), key=lambda i: group[i][0] - group[i - 1][1])
            groups[:0] = [group[:cut], group[cut:]]
        else:  # 30 s without a pause of 0.1 s: cut where the window ends
            (s, e) = group[0]
            groups[:0] = [[(s, s + longest)], [(s + longest, e)]]
    pieces: list[Piece] = []
    at = 0.0
    for group in fitted:
        start = max(0.0, group[0][0] - PAD, pieces[-1].end if pieces else 0.0)
        end = min(duration, group[-1][1] + PAD)
        pieces.append(Piece(round(start, 4), round(end, 4), round(at, 4)))
        at += end - start
    return SpeechMap(tuple(speech), tuple(pieces))


def find_speech(audio: npt.NDArray[np.float32]) -> SpeechMap:
    """Silero VAD (faster-whisper's) at a fine grain: pauses from 0.1 s, no padding."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(
        audio, VadOptions(min_silence_duration_ms=100, speech_pad_ms=0), SAMPLE_RATE
    )
    speech = [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]
    return speech_map(speech, len(audio) / SAMPLE_RATE)


def turns(times: Sequence[tuple[float, float]], gap: float = TURN_GAP) -> list[range]:
    """Runs of consecutive words (by index) with no pause of `gap` seconds inside one."""
    if not times:
        return []
    cuts = [i for i in range(1, len(times)) if times[i][0] - times[i - 1][1] >= gap]
    return [range(a, b) for a, b in zip([0, *cuts], [*cuts, len(times)], strict=True)]

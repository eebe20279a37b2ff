"""Building call audio for tests: spoken lines placed on the agent or debtor channel."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.helpers import espeak_wav

RATE = 8000


def read_mono(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == RATE and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def write_wav(path: Path, channels: list[npt.NDArray[np.int16]], rate: int = RATE) -> Path:
    frames = np.stack(channels, axis=1) if len(channels) > 1 else channels[0]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.ascontiguousarray(frames, dtype=np.int16).tobytes())
    return path


def call_audio(path: Path, lines: list[tuple[str, float, str]], seconds: float) -> Path:
    """A stereo call: each line is (speaker 'agent'|'debtor', start second, text)."""
    left = np.zeros(int(seconds * RATE), dtype=np.int16)
    right = np.zeros_like(left)
    for i, (speaker, start, text) in enumerate(lines):
        speech = read_mono(espeak_wav(text, path.parent / f"{path.stem}-{i}.wav", RATE))
        target = left if speaker == "agent" else right
        begin = int(start * RATE)
        target[begin : begin + len(speech)] = speech[: len(target) - begin]
    return write_wav(path, [left, right])


def tone(
    seconds: float, hz: float, amplitude: float = 0.3, on_off: float | None = None
) -> npt.NDArray[np.int16]:
    """A tone; with on_off, cadenced like a ring-back tone (1 s on, 4 s off in China)."""
    t = np.arange(int(seconds * RATE)) / RATE
    signal = amplitude * np.sin(2 * np.pi * hz * t)
    if on_off is not None:
        signal *= (t % (on_off * 5)) < on_off
    return (signal * 32767).astype(np.int16)


def noise(seconds: float, amplitude: float = 0.1, seed: int = 7) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return (
        (rng.normal(0, amplitude, int(seconds * RATE)) * 32767).clip(-32768, 32767).astype(np.int16)
    )


#: Frames of 10 ms louder than this (RMS, full scale 1.0; about -46 dBFS) are speech
#: when finding where a synthesised utterance really starts and ends.
_VOICED_RMS = 0.005
_FRAME = RATE // 100


def speech_span(speech: npt.NDArray[np.int16]) -> tuple[float, float]:
    """Where speech starts and ends inside an utterance's WAV, in seconds.

    espeak-ng pads its output with silence of its own; a generated call's true
    onset is the utterance's offset plus this, measured rather than assumed 0.
    """
    frames = len(speech) // _FRAME
    blocks = speech[: frames * _FRAME].astype(np.float64).reshape(frames, _FRAME) / 32768.0
    voiced = np.flatnonzero(np.sqrt(np.mean(np.square(blocks), axis=1)) > _VOICED_RMS)
    if voiced.size == 0:
        raise ValueError("the utterance holds no speech")
    return float(voiced[0] * _FRAME / RATE), float((voiced[-1] + 1) * _FRAME / RATE)


#: The pause between the phrases of one turn ("Thank you. | Goodbye."), seconds:
#: shorter than a turn gap, so one segment may hold both phrases.
PHRASE_PAUSE = 0.6


@dataclass(frozen=True)
class Phrase:
    """Part of a turn synthesised on its own, so where it starts is known too."""

    text: str
    onset: float  # seconds from the start of the call to the first voiced frame
    end: float  # seconds to the last voiced frame


@dataclass(frozen=True)
class Turn:
    """One spoken turn of a generated call, with where it truly is in the recording."""

    speaker: str  # 'agent' (left channel) or 'debtor' (right)
    phrases: tuple[Phrase, ...]

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.phrases)

    @property
    def onset(self) -> float:
        return self.phrases[0].onset

    @property
    def end(self) -> float:
        return self.phrases[-1].end


def timed_call(
    path: Path, turns: list[tuple[str, float, str]], tail: float = 1.0
) -> tuple[Path, list[Turn]]:
    """A stereo call built from (speaker, silence before the turn in seconds, text).

    The silence is measured from the end of the previous turn's speech (the
    start of the call for the first) to this turn's speech, across channels, so
    gaps longer than Whisper's VAD keeps or than a 30 s window are exactly what
    the caller asks for, and each turn's true onset is known to the 10 ms frame.
    A text of phrases split by " | " is spoken with `PHRASE_PAUSE` between them,
    each phrase's onset known as well.
    """
    placed: list[tuple[str, int, npt.NDArray[np.int16]]] = []
    truth: list[Turn] = []
    cursor = 0.0  # where the last speech ended
    for i, (speaker, gap, text) in enumerate(turns):
        phrases: list[Phrase] = []
        for j, part in enumerate(p.strip() for p in text.split("|")):
            wav = espeak_wav(part, path.parent / f"{path.stem}-{i}-{j}.wav", RATE)
            speech = read_mono(wav)
            begin_in, end_in = speech_span(speech)
            pause = gap if j == 0 else PHRASE_PAUSE
            offset = max(0, round((cursor + pause - begin_in) * RATE))
            placed.append((speaker, offset, speech))
            phrases.append(
                Phrase(part, round(offset / RATE + begin_in, 3), round(offset / RATE + end_in, 3))
            )
            cursor = offset / RATE + end_in
        truth.append(Turn(speaker, tuple(phrases)))
    length = max(offset + len(speech) for _, offset, speech in placed) + int(tail * RATE)
    left = np.zeros(length, dtype=np.int32)
    right = np.zeros_like(left)
    for speaker, offset, speech in placed:  # summed: one turn's padding may overlap the next
        target = left if speaker == "agent" else right
        target[offset : offset + len(speech)] += speech
    channels = [c.clip(-32768, 32767).astype(np.int16) for c in (left, right)]
    return write_wav(path, channels), truth


#: Calls whose timing is the test: gaps over 5 s (VAD cuts them; one of 12 s), short
#: replies 0.5 s after the other party, and one party speaking twice around a short
#: reply, so their channel's two sentences are decoded in one window.
TIMED_CALLS: dict[str, list[tuple[str, float, str]]] = {
    "long-silences": [
        ("agent", 0.8, "Good morning, this is Anna calling from Northwind Collections."),
        ("debtor", 0.5, "Yes, speaking. What is this about?"),
        ("agent", 6.5, "I am calling about your credit card account, which is overdue."),
        ("debtor", 12.0, "I lost my job last month and I cannot pay right now."),
        ("agent", 0.5, "I understand. | We can set up a payment plan that fits your budget."),
        ("debtor", 7.5, "How much would I have to pay each month?"),
        ("agent", 5.5, "The minimum would be fifty dollars, due on the fifth."),
        ("debtor", 0.6, "All right, I can do that."),
    ],
    "quick-replies": [
        ("agent", 2.5, "Hello, may I speak with Mister David Chen?"),
        ("debtor", 0.5, "Yes, this is David."),
        ("agent", 0.5, "This call is recorded for quality purposes."),
        ("debtor", 0.5, "Okay, go ahead."),
        ("agent", 0.5, "Your balance of four hundred dollars was due on Monday."),
        ("debtor", 5.2, "I sent the money yesterday by bank transfer."),
        ("agent", 0.7, "That is good news. | It can take two working days to arrive."),
        ("debtor", 0.5, "That is fine with me."),
        ("agent", 8.0, "I have noted your payment on the account."),
        ("debtor", 0.5, "Right, goodbye then."),
    ],
    "agent-twice": [
        ("agent", 1.2, "Good afternoon, I am calling from the bank about your loan."),
        ("debtor", 0.5, "Which loan?"),
        ("agent", 0.6, "The car loan that you took out in March."),
        ("agent", 6.0, "Are you still there?"),
        ("debtor", 0.8, "Yes, sorry. | I was looking for my statement."),
        ("agent", 12.0, "The payment for this month has not arrived yet."),
        ("debtor", 0.5, "I will pay it on Friday."),
        ("agent", 0.5, "Thank you. I will call you again next week."),
    ],
}

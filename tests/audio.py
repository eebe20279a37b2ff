"""Building call audio for tests: spoken lines placed on the agent or debtor channel."""

from __future__ import annotations

import wave
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

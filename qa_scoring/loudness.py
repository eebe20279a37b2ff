"""Per-second loudness of a call's WAV, the one input of the call metrics read from a file.

Shouting is judged on sound, not on words: a transcript cannot tell a raised
voice from a calm one. One value a second is fine enough for "how long was the
agent loud" and small enough to keep for a 3-hour call (10,800 numbers per
channel); the file is read a minute at a time so a long call never sits in
memory whole.

Loudness is RMS in dBFS: 0 dBFS is a full-scale square wave, so a full-scale
sine reads -3 dBFS and digital silence reads `SILENCE_DBFS` (a floor, because
the logarithm of zero is minus infinity, which JSON cannot carry).
Channels come back in file order: mono is the agent alone, stereo is agent
left and debtor right, as recordings are wired.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa_scoring.errors import QaError

__all__ = ["SILENCE_DBFS", "LoudnessError", "wav_loudness"]

SILENCE_DBFS = -120.0
_CHUNK_SECONDS = 60
_HINT = "give a PCM WAV (8, 16, 24 or 32 bit), or a transcript JSON to check without loudness"


class LoudnessError(QaError):
    """A file cannot be read as PCM WAV, so its loudness cannot be measured."""


def _samples(raw: bytes, width: int) -> npt.NDArray[np.float64]:
    """PCM bytes as floats where full scale is 1.0."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:  # bytes per sample
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        return values.astype(np.float64) / float(1 << 23)
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    raise LoudnessError(f"{width * 8}-bit samples are not supported", _HINT)


def _dbfs(frames: npt.NDArray[np.float64]) -> float:
    rms = math.sqrt(float(np.mean(np.square(frames))))
    if rms <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(rms))


def wav_loudness(path: str | Path) -> list[list[float]]:
    """Per channel, the RMS loudness in dBFS of each second; a last partial second counts."""
    source = Path(path)
    try:
        with wave.open(str(source), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if rate <= 0:
                raise LoudnessError(f"{source.name} has a sample rate of {rate}", _HINT)
            levels: list[list[float]] = [[] for _ in range(channels)]
            while True:
                raw = wav.readframes(rate * _CHUNK_SECONDS)
                if not raw:
                    break
                frames = _samples(raw, width)
                frames = frames[: len(frames) - len(frames) % channels].reshape(-1, channels)
                for begin in range(0, len(frames), rate):
                    second = frames[begin : begin + rate]
                    for channel in range(channels):
                        levels[channel].append(_dbfs(second[:, channel]))
    except FileNotFoundError as exc:
        raise LoudnessError(f"{source} does not exist", _HINT) from exc
    except (wave.Error, EOFError, OSError) as exc:
        raise LoudnessError(f"cannot read {source.name} as a WAV: {exc}", _HINT) from exc
    return levels

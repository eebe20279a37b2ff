"""One stereo WAV from a call's two parties, agent left and debtor right.

Each party is recorded on its own, mono, from the moment its audio was first
connected; the merge places each at its start time on one clock. The B2BUA
merges at the end of a call and salvage after a killed worker; neither needs
pjsua2 for it.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np


def _read_mono(path: Path) -> tuple[np.ndarray[Any, np.dtype[np.int16]], int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path.name}: expected 16-bit mono PCM")
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.int16), rate


def merge_stereo(
    left: Path, right: Path, out: Path, *, left_start: float, right_start: float
) -> float:
    """Write left and right mono WAVs as one stereo WAV, each placed at its start time.

    The start times are on one clock (the moment audio was first connected to
    each recorder); the earlier one is time zero. Returns the duration written.
    """
    lpcm, rate = _read_mono(left)
    rpcm, rrate = _read_mono(right)
    if rrate != rate:
        raise ValueError(f"sample rates differ: {rate} and {rrate}")
    t0 = min(left_start, right_start)
    loff = round((left_start - t0) * rate)
    roff = round((right_start - t0) * rate)
    frames = max(loff + len(lpcm), roff + len(rpcm))
    stereo = np.zeros((frames, 2), dtype="<i2")
    stereo[loff : loff + len(lpcm), 0] = lpcm
    stereo[roff : roff + len(rpcm), 1] = rpcm
    tmp = out.with_suffix(".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(stereo.tobytes())
    tmp.replace(out)  # a reader never sees half a file
    return frames / rate

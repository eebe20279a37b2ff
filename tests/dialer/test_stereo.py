"""Two parties' mono recordings into one stereo file, each placed at its start time."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialer.stereo import merge_stereo


def _mono(path: Path, samples: np.ndarray[Any, np.dtype[np.int16]], rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def test_merge_aligns_by_start_time(tmp_path: Path) -> None:
    left = _mono(tmp_path / "l.wav", np.full(8000, 1000, dtype=np.int16))
    right = _mono(tmp_path / "r.wav", np.full(4000, -1000, dtype=np.int16))
    out = tmp_path / "out.wav"
    duration = merge_stereo(left, right, out, left_start=10.0, right_start=10.5)
    assert duration == pytest.approx(1.0)
    with wave.open(str(out), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert (pcm[:, 0] == 1000).all()
    assert (pcm[:4000, 1] == 0).all() and (pcm[4000:, 1] == -1000).all()

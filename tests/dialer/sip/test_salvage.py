"""What a killed dialer leaves: a WAV whose header claims no audio, repaired from its length."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

from dialer.sip.salvage import repair_wav
from tests.audio import RATE, tone, write_wav


def test_repair_rewrites_the_sizes_of_a_truncated_wav(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "p.wav", [tone(2.0, 440)])
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 36)  # as pjmedia leaves it before closing
    raw[40:44] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw) + b"\x01")  # and half a sample
    assert repair_wav(path)
    with wave.open(str(path)) as w:
        assert w.getnframes() == 2 * RATE
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(b"not a wav at all")
    assert not repair_wav(garbage)

"""Encoding calls to Ogg/Opus: small, both channels kept apart, bad input named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from recording.encode import AudioFormatError, encode_call
from tests.audio import call_audio, noise, tone, write_wav

MAX_BYTES_PER_STEREO_MINUTE = 200_000


def test_a_noisy_minute_fits_the_size_target(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "noisy.wav", [noise(60, 0.2, seed=1), noise(60, 0.2, seed=2)])
    encoded = encode_call(wav, tmp_path / "noisy.ogg")
    assert encoded.channels == 2
    assert encoded.duration == pytest.approx(60.0, abs=0.01)
    assert encoded.size <= MAX_BYTES_PER_STEREO_MINUTE
    assert wav.stat().st_size / encoded.size > 5


def test_channels_stay_apart_and_length_is_kept(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "lr.wav", [tone(10, 400), np.zeros(80000, dtype=np.int16)])
    encoded = encode_call(wav, tmp_path / "lr.ogg")
    left, right = decode_audio(str(encoded.path), 16000, split_stereo=True)
    assert abs(len(left) / 16000 - 10.0) < 0.1  # the call record's length, within 1 s
    assert float(np.sqrt(np.mean(left**2))) > 0.1
    assert float(np.sqrt(np.mean(right**2))) < 0.01


def test_speech_survives_encoding(tmp_path: Path) -> None:
    wav = call_audio(tmp_path / "c.wav", [("agent", 0.2, "This call is recorded.")], seconds=3)
    encoded = encode_call(wav, tmp_path / "c.ogg")
    assert encoded.path.read_bytes()[:4] == b"OggS"
    assert not (tmp_path / "c.ogg.part").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "missing or empty"), (b"RIFF....WAVEjunk" * 3, "not readable audio")],
)
def test_bad_captures_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(AudioFormatError, match=message):
        encode_call(bad, tmp_path / "bad.ogg")
    assert not (tmp_path / "bad.ogg").exists()

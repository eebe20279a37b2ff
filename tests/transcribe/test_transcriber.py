"""Real faster-whisper on small real audio: speakers from channels, no invented text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio import call_audio, noise, tone, write_wav
from tests.helpers import dialguard, espeak_wav
from transcribe.engine import BatchedModel, batch_size_for, load_model, threads_per_worker
from transcribe.errors import AudioError
from transcribe.model_store import resolve_model
from transcribe.result import Speaker
from transcribe.transcriber import transcribe_recording


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_model(resolve_model("base", tmp_path_factory.mktemp("models")), "cpu")


@pytest.fixture(params=["sequential", "batched"])
def engine(model: Any, request: pytest.FixtureRequest) -> Any:
    """Both decoders the settings offer: window after window, and both parties batched."""
    return BatchedModel(model, batch_size=4) if request.param == "batched" else model


def test_stereo_call_is_split_by_speaker_with_times(engine: Any, tmp_path: Path) -> None:
    audio = call_audio(
        tmp_path / "call.wav",
        [
            ("agent", 0.5, "Good morning, this is Anna from the collections agency."),
            ("debtor", 5.0, "I cannot pay before Friday."),
        ],
        seconds=9.0,
    )
    result = transcribe_recording(engine, "base", audio, language="en")
    assert result.duration == pytest.approx(9.0, abs=0.05)
    agent = " ".join(s.text for s in result.segments if s.speaker is Speaker.AGENT).lower()
    debtor = " ".join(s.text for s in result.segments if s.speaker is Speaker.DEBTOR).lower()
    assert "morning" in agent and "friday" not in agent
    assert "friday" in debtor and "morning" not in debtor
    first_debtor = next(s for s in result.segments if s.speaker is Speaker.DEBTOR)
    assert 4.0 <= first_debtor.start <= 6.0
    assert all(0.0 < s.confidence <= 1.0 and s.words for s in result.segments)
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)


def test_language_is_detected_when_not_given(model: Any, tmp_path: Path) -> None:
    audio = espeak_wav("Hello, I am calling about your credit card payment.", tmp_path / "a.wav")
    result = transcribe_recording(model, "base", audio)
    assert result.language == "en"
    assert all(s.speaker is Speaker.AGENT for s in result.segments)  # mono is the agent


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("silence", lambda: np.zeros(8000 * 20, dtype=np.int16)),
        ("ring-back tone", lambda: tone(20, 450, on_off=1.0)),
        ("hold tone", lambda: tone(20, 440)),
        ("line noise", lambda: noise(20)),
    ],
)
def test_no_text_from_what_is_not_speech(model: Any, tmp_path: Path, name: str, make: Any) -> None:
    audio = write_wav(tmp_path / "x.wav", [make(), make()])
    result = transcribe_recording(model, "base", audio, language="en")
    assert result.segments == (), f"{name} produced {[s.text for s in result.segments]}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 10, "not readable audio"),
        (b"this is a text file, not audio\n" * 20, "not readable audio"),
    ],
)
def test_bad_files_are_named(model: Any, tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        transcribe_recording(model, "base", bad)


def test_truncated_recording_still_transcribes_what_is_there(model: Any, tmp_path: Path) -> None:
    audio = espeak_wav("Your payment of two hundred dollars is overdue.", tmp_path / "t.wav")
    data = audio.read_bytes()
    audio.write_bytes(data[: len(data) * 2 // 3])  # a crash mid-write cuts the tail
    result = transcribe_recording(model, "base", audio, language="en")
    assert "payment" in " ".join(s.text for s in result.segments).lower()


def test_cli_prints_the_documented_json(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    audio = call_audio(
        tmp_path / "call.wav",
        [("agent", 0.3, "Please confirm your date of birth."), ("debtor", 4.0, "No.")],
        seconds=6.0,
    )
    env = dialguard_env | {"DIALGUARD_WHISPER_MODEL": "base"}
    result = dialguard(["transcribe", str(audio), "--json", "--language", "en"], env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"language", "duration", "segments"}
    assert out["language"] == "en"
    first = out["segments"][0]
    assert set(first) >= {"start", "end", "speaker", "text"}
    assert first["speaker"] == "agent" and "birth" in first["text"].lower()


def test_cli_names_a_bad_file_in_one_line(tmp_path: Path, dialguard_env: dict[str, str]) -> None:
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    result = dialguard(["transcribe", str(bad), "--json"], dialguard_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("dialguard: corrupt.wav")


@pytest.mark.parametrize(
    ("requested", "device", "size"),
    [(-1, "cuda", 16), (-1, "cpu", 8), (0, "cuda", 0), (0, "cpu", 0), (4, "cuda", 4)],
)
def test_batching_where_it_helps(requested: int, device: Any, size: int) -> None:
    assert batch_size_for(requested, device) == size


def test_language_is_detected_on_the_agents_side_and_used_for_both(
    engine: Any, tmp_path: Path
) -> None:
    lines = [
        ("agent", 0.5, "Good morning, I am calling about your credit card payment."),
        ("debtor", 5.5, "I will pay the full amount on Friday."),
    ]
    audio = call_audio(tmp_path / "call.wav", lines, seconds=9.0)
    result = transcribe_recording(engine, "base", audio)
    assert result.language == "en"
    debtor = " ".join(s.text for s in result.segments if s.speaker is Speaker.DEBTOR).lower()
    assert "friday" in debtor


def test_a_call_in_another_language_is_written_in_it(engine: Any, tmp_path: Path) -> None:
    """The batched engine learns the language from its first window's encoding: the
    decoding that follows must use it, not the stand-in it started with."""
    audio = espeak_wav(
        "Buenos días, le llamo por la factura de su tarjeta de crédito.",
        tmp_path / "es.wav",
        voice="es",
    )
    result = transcribe_recording(engine, "base", audio)
    assert result.language == "es"
    assert "tarjeta" in " ".join(s.text for s in result.segments).lower()


@pytest.mark.parametrize(
    ("requested", "workers", "cores", "threads"),
    [(0, 1, 2, 2), (0, 2, 2, 1), (0, 3, 2, 1), (0, 2, 16, 8), (0, 0, 4, 4), (3, 2, 2, 3)],
)
def test_workers_share_the_cores(requested: int, workers: int, cores: int, threads: int) -> None:
    assert threads_per_worker(requested, workers, cores) == threads

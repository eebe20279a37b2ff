"""Whisper models from PyPI packages: joined once, loaded, and heard speaking."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import espeak_wav
from transcribe.engine import EngineChoice, choose_device, load_model
from transcribe.errors import ModelNotFound
from transcribe.model_store import resolve_model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_base_is_joined_from_its_two_packages_once(models_dir: Path) -> None:
    path = resolve_model("base", models_dir)
    assert path == models_dir / "whisper-base"
    files = {p.name for p in path.iterdir()}
    assert files == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    first_write = (path / "model.bin").stat().st_mtime_ns
    assert resolve_model("base", models_dir) == path
    assert (path / "model.bin").stat().st_mtime_ns == first_write
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no staging left


def test_joined_base_model_understands_speech(models_dir: Path, tmp_path: Path) -> None:
    """The join is right only if the model decodes real speech: a wrong byte order would not."""
    # 16 kHz, the model's own rate: this checks the join, not telephone-band accuracy
    # (at 8 kHz this short sentence is misheard with some espeak-ng and ffmpeg builds).
    audio = espeak_wav("Please confirm your date of birth.", tmp_path / "agent.wav", rate=16000)
    model = load_model(resolve_model("base", models_dir), "cpu")
    segments, info = model.transcribe(str(audio), language="en", beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    assert "birth" in text
    assert info.duration > 1.0


def test_tiny_en_comes_from_its_package(models_dir: Path) -> None:
    assert (resolve_model("tiny.en", models_dir) / "model.bin").is_file()


def test_a_model_directory_can_be_named(models_dir: Path) -> None:
    base = resolve_model("base", models_dir)
    assert resolve_model(str(base), models_dir) == base


@pytest.mark.parametrize(
    ("name", "message", "hint"),
    [
        ("large-v9", "unknown Whisper model", "DIALGUARD_WHISPER_MODEL"),
        ("/nonexistent/model", "unknown Whisper model", "DIALGUARD_WHISPER_MODEL"),
    ],
)
def test_unknown_models_are_named(models_dir: Path, name: str, message: str, hint: str) -> None:
    with pytest.raises(ModelNotFound, match=message) as missing:
        resolve_model(name, models_dir)
    assert hint in missing.value.hint


def test_directory_without_weights_is_refused(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"has no model\.bin"):
        resolve_model(str(tmp_path), models_dir)


def test_corrupt_weights_are_a_clear_error(tmp_path: Path, models_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    base = resolve_model("base", models_dir)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (broken / name).write_bytes((base / name).read_bytes())
    (broken / "model.bin").write_bytes((base / "model.bin").read_bytes()[:4096])
    with pytest.raises(ModelNotFound, match="does not load"):
        load_model(broken, "cpu")


@pytest.mark.parametrize(
    ("requested", "cuda_devices", "expected"),
    [
        ("auto", 0, EngineChoice("cpu", "int8")),
        ("auto", 1, EngineChoice("cuda", "float16")),
        ("cpu", 2, EngineChoice("cpu", "int8")),
        ("cuda", 1, EngineChoice("cuda", "float16")),
    ],
)
def test_device_choice(requested: str, cuda_devices: int, expected: EngineChoice) -> None:
    assert choose_device(requested, cuda_devices) == expected  # type: ignore[arg-type]

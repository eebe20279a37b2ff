"""A transcription worker process.

Runs apart from the dialer so that transcription never delays a call, and
may run on another host against the same database and storage. It loads the
model once at start (a model that does not load is reported at once, not at
the first recording) and then reports its state in its heartbeat.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from recording.heartbeat import run_with_heartbeat
from transcribe.engine import Device, load_model

COMPONENT = "transcriber"


def run_transcriber(
    sessions: sessionmaker[Session], model_dir: Path, device: Device, stop: threading.Event
) -> None:
    model = load_model(model_dir, device)
    label = f"model {model_dir.name} loaded on {model.model.device}"
    run_with_heartbeat(COMPONENT, sessions, stop, lambda: f"{label}; idle")

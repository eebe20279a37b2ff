"""A transcription worker process.

Runs apart from the dialer so that transcription never delays a call, and
may run on another host against the same database and storage. It loads the
model once at start (a model that does not load is reported at once, not at
the first recording), then claims jobs from the queue until stopped.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recording.db.heartbeats import instance_name, run_with_heartbeat
from recording.errors import RecordingError
from recording.models import Recording
from transcribe.engine import DEFAULT_BEAM, Device, load_engine
from transcribe.errors import AudioError
from transcribe.models import TranscriptionJob
from transcribe.queue import claim, complete, enqueue_missing, fail, requeue_stale
from transcribe.stats import keep_up
from transcribe.store import save_transcript
from transcribe.transcriber import transcribe_recording

COMPONENT = "transcriber"
log = logging.getLogger(__name__)

#: Writes a recording's decrypted audio (Ogg/Opus) for a recording id to a file.
FetchAudio = Callable[[str, BinaryIO], object]
Clock = Callable[[], datetime]


def model_version(model_dir: Path) -> str:
    import faster_whisper

    return f"faster-whisper {faster_whisper.__version__}; {model_dir.name}"[:64]


def process_job(
    sessions: sessionmaker[Session],
    job: TranscriptionJob,
    model: Any,
    model_name: str,
    version: str,
    fetch_audio: FetchAudio,
    clock: Clock,
    languages: Mapping[str, str] = MappingProxyType({}),
) -> None:
    """Transcribe one claimed job; every outcome ends in DONE, a retry or DEAD with a reason.

    `languages` maps a client to the language its calls are in: detection on
    a few seconds of a noisy line can pick the wrong one, and a client knows.
    """
    extra = {"recording": job.recording_id, "job": job.id}
    try:
        with sessions() as session:
            client = session.scalar(
                select(Recording.client_id).where(Recording.id == job.recording_id)
            )
        language = languages.get(client or "")
        with tempfile.TemporaryDirectory(prefix="dialguard-stt-") as scratch:
            audio = Path(scratch) / "call.ogg"  # plaintext lives only for this job
            with audio.open("wb") as sink:
                fetch_audio(job.recording_id, sink)
            transcript = transcribe_recording(model, model_name, audio, language)
        with sessions() as session:
            save_transcript(session, job.recording_id, transcript, version, clock())
            complete(session, session.merge(job), clock())
        log.info("transcribed", extra=extra | {"segments": len(transcript.segments)})
    except AudioError as exc:  # the audio will not get better by retrying
        _fail(sessions, job, f"{exc}", clock, permanent=True)
        log.error("recording cannot be transcribed", extra=extra | {"reason": str(exc)})
    except RecordingError as exc:
        _fail(sessions, job, f"audio unavailable: {exc}", clock)
        log.warning("audio unavailable; will retry", extra=extra)
    except Exception as exc:
        _fail(sessions, job, f"{type(exc).__name__}: {exc}", clock)
        log.exception("transcription failed; will retry", extra=extra)


def _fail(
    sessions: sessionmaker[Session],
    job: TranscriptionJob,
    reason: str,
    clock: Clock,
    permanent: bool = False,
) -> None:
    with sessions() as session:
        fail(session, session.merge(job), reason, clock(), permanent=permanent)


def work_once(
    sessions: sessionmaker[Session],
    model: Any,
    model_name: str,
    version: str,
    fetch_audio: FetchAudio,
    stop: threading.Event,
    clock: Clock = lambda: datetime.now(UTC),
    batch: int = 5,
    languages: Mapping[str, str] = MappingProxyType({}),
) -> str:
    """Queue new recordings, then work up to `batch` jobs; returns the heartbeat status."""
    worker = instance_name()
    with sessions() as session:
        requeue_stale(session, clock())
        enqueue_missing(session, model_name, clock())
    for _ in range(batch):
        if stop.is_set():
            break
        with sessions() as session:
            job = claim(session, worker, clock())
        if job is None:
            break
        process_job(sessions, job, model, model_name, version, fetch_audio, clock, languages)
    with sessions() as session:
        return f"model {model_name}; {keep_up(session, clock()).describe()}"


def run_transcriber(
    sessions: sessionmaker[Session],
    model_dir: Path,
    model_name: str,
    device: Device,
    fetch_audio: FetchAudio,
    stop: threading.Event,
    languages: Mapping[str, str] = MappingProxyType({}),
    batch_size: int = -1,
    beam_size: int = DEFAULT_BEAM,
    cpu_threads: int = 0,
) -> None:
    model = load_engine(model_dir, device, batch_size, beam_size, cpu_threads)
    version = model_version(model_dir)
    run_with_heartbeat(
        COMPONENT,
        sessions,
        stop,
        lambda: work_once(
            sessions, model, model_name, version, fetch_audio, stop, languages=languages
        ),
    )

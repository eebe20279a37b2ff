"""The `dialguard recording ...` commands: import, fetch and verify recordings."""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pydub import AudioSegment
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.i18n import day, gettext, translate
from api.settings import Settings
from recording.keys import KeyWrapper
from recording.models import Recording, RecordingStatus
from recording.storage_rules import retention_for
from recording.store import CallInfo, Copy, fetch, spool_call, verify
from recording.uploader import deliver

#: How long `recording store` waits for both copies before leaving the rest to the uploader.
STORE_TIMEOUT_S = 30.0


def store(
    settings: Settings,
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    args: argparse.Namespace,
) -> int:
    """Import one recording: spool it, then store it (and only it) within `--timeout`.

    Says where the recording is: stored in both copies, or spooled and why.
    Either way it is safe (encrypted in the spool until both copies are
    verified) and the exit status is 0; the uploader of `dialguard up`
    finishes what the timeout cut short.
    """
    now = datetime.now(UTC)
    recorded_at = args.recorded_at or now
    if recorded_at.tzinfo is None:
        recorded_at = recorded_at.replace(tzinfo=UTC)
    info = CallInfo(
        args.call_id, args.agent, recorded_at, debtor_id=args.debtor, client_id=args.client
    )
    days = retention_for(args.client, settings.retention_days, settings.client_retention_map)
    row = spool_call(sessions, settings.spool_dir, keys, args.file, info, days, now)
    timeout = getattr(args, "timeout", None) or STORE_TIMEOUT_S
    where = deliver(sessions, settings.spool_dir, copies, row.id, timeout)
    reason = gettext(where.reason) if where.reason else ""
    if where.stored:
        state = gettext("stored in both copies")
    elif where.copies:
        state = translate(
            "spooled, not yet stored (%(copies)s copy verified, %(reason)s); the uploader of "
            "`dialguard up` stores it when storage answers",
            copies=", ".join(where.copies),
            reason=reason,
        )
    else:
        state = translate(
            "spooled, not yet stored (%(reason)s); the uploader of `dialguard up` stores it "
            "when storage answers",
            reason=reason,
        )
    seconds = f"{row.duration_s:.1f}"
    print(
        translate(
            "%(id)s %(state)s (%(seconds)s s, retained until %(day)s)",
            id=row.id,
            state=state,
            seconds=seconds,
            day=day(row.retain_until),
        )
    )
    return 0


def fetch_to(
    settings: Settings,
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    recording_id: str,
    output: Path,
) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        ogg = Path(scratch) / "audio.ogg"
        with ogg.open("wb") as sink:
            served = fetch(sessions, settings.spool_dir, copies, keys, recording_id, sink)
        if output.suffix.lower() in {".ogg", ".opus"}:
            output.write_bytes(ogg.read_bytes())
        else:
            pcm = AudioSegment.from_file(ogg).set_sample_width(2).set_frame_rate(16000)
            pcm.export(output, format="wav")
    print(
        translate(
            "%(id)s written to %(path)s (from the %(copy)s copy)",
            id=recording_id,
            path=output,
            copy=served,
        )
    )
    return 0


def verify_some(
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    keys: KeyWrapper,
    recording_id: str | None,
) -> int:
    if recording_id is None:
        with sessions() as session:
            ids = list(
                session.scalars(
                    select(Recording.id).where(Recording.status == RecordingStatus.STORED)
                )
            )
    else:
        ids = [recording_id]
    failed = 0
    for one in ids:
        for check in verify(sessions, copies, keys, one):
            print(f"{one}  {check.copy:<7}  {'ok' if check.ok else 'FAIL'}  {check.detail}")
            failed += not check.ok
    print(
        translate(
            "%(n)s recording(s) checked, %(failed)s copy failure(s)", n=len(ids), failed=failed
        )
    )
    return 1 if failed else 0

"""What a killed dialer left behind: each party's audio, repaired and stored at the next start.

pjmedia writes a WAV's sizes only when the recorder is closed, and flushes
the audio itself every few kilobytes while the call runs. A process killed
mid-call leaves a file whose header claims no audio at all; the audio is
there, so the sizes are rewritten from the file's length and the two
parties are merged as at the end of a normal call.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dialer.calls import note_path
from dialer.stereo import merge_stereo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    """A call found on disk with the note written when it began."""

    call_id: str
    agent: str
    started_at: float  # epoch seconds
    recording: Path  # stereo WAV, agent left and debtor right
    number_key: str = ""  # keyed hash of the number, when the dialer noted it
    number_masked: str = ""


def repair_wav(path: Path) -> bool:
    """Rewrite the RIFF and data sizes from the file's length; False if no audio is there."""
    with path.open("r+b") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        size = path.stat().st_size
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                data = size - offset - 8
                data -= data % 2  # whole 16-bit samples only
                f.seek(offset + 4)
                f.write(struct.pack("<I", data))
                f.seek(4)
                f.write(struct.pack("<I", offset + data))
                f.truncate(offset + 8 + data)
                return data > 0
            offset += 8 + length + (length % 2)
    return False


def _silence_like(other: Path, out: Path) -> None:
    """A header-only WAV of the same format, for a party with no file at all."""
    with other.open("rb") as f:
        header = f.read(44)
    out.write_bytes(header[:4] + struct.pack("<I", 36) + header[8:40] + struct.pack("<I", 0))


def find_leftovers(directory: Path) -> list[Leftover]:
    """Every call with a note in `directory`, its audio repaired and merged to stereo.

    A note with no audio (the call was killed before it was answered) is removed.
    """
    found = []
    for note in sorted(directory.glob("*.json")):
        try:
            meta = json.loads(note.read_text())
            call_id, agent, started = (
                str(meta["call_id"]),
                str(meta["agent"]),
                float(meta["started_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            log.error("salvage: unreadable note %s left in place", note.name)
            continue
        stereo = directory / f"{call_id}.wav"
        parts = [directory / f"{call_id}-{party}.wav" for party in ("agent", "debtor")]
        if not stereo.exists():
            usable = [p for p in parts if p.exists() and repair_wav(p)]
            if not usable:
                for part in parts:
                    part.unlink(missing_ok=True)
                note.unlink()
                continue
            for part in parts:
                if part not in usable:
                    _silence_like(usable[0], part)
            merge_stereo(parts[0], parts[1], stereo, left_start=0.0, right_start=0.0)
            for part in parts:
                part.unlink(missing_ok=True)
            log.warning(
                "salvage: repaired the recording of an interrupted call", extra={"call_id": call_id}
            )
        found.append(
            Leftover(
                call_id,
                agent,
                started,
                stereo,
                str(meta.get("number_key", "")),
                str(meta.get("number_masked", "")),
            )
        )
    return found


def salvage(directory: Path, store: Callable[[Leftover], None]) -> int:
    """Store every leftover call; each one's files go only once `store` returned."""
    stored = 0
    for leftover in find_leftovers(directory):
        try:
            store(leftover)
        except Exception:
            log.exception(
                "salvage: storing failed, kept for the next start",
                extra={"call_id": leftover.call_id},
            )
            continue
        leftover.recording.unlink(missing_ok=True)
        note_path(leftover.recording).unlink(missing_ok=True)
        stored += 1
    return stored

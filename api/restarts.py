"""The supervisor's recent restarts of children, for the console's status page.

`dialguard up` restarts a child that exits or stops answering (a hung SIP
edge among them); the log says so, and so does the status page, which runs
in another process: the supervisor keeps the last few restarts in a small
JSON file in the data directory and the page reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

KEEP = 20


@dataclass(frozen=True)
class Restart:
    child: str
    why: str  # "exited" or "hung"
    at: str  # ISO 8601, UTC


def restarts_file(data_dir: Path) -> Path:
    return data_dir / "restarts.json"


def read_restarts(path: Path) -> list[Restart]:
    """Newest first; nothing when the file is missing or unreadable (never an error page)."""
    try:
        rows = json.loads(path.read_text())
        return [Restart(str(r["child"]), str(r["why"]), str(r["at"])) for r in rows][::-1]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record_restart(path: Path, child: str, why: str, at: datetime) -> None:
    """Append one restart, keeping the last `KEEP`; a failure to write is not the child's."""
    with contextlib.suppress(OSError):
        rows = [asdict(r) for r in read_restarts(path)[::-1]]
        rows.append(asdict(Restart(child, why, at.isoformat(timespec="seconds"))))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows[-KEEP:]))
        os.replace(tmp, path)

"""Anchors: the audit chain's head written to WORM storage, where nobody can take it back.

A MAC stops whoever holds only the database. Someone who also holds the
audit key could rewrite history and recompute every MAC, so the API
process writes the chain's head (the last entry's sequence number, hash and
MAC) as an object under `audit-anchors/` in the primary recordings bucket,
locked in COMPLIANCE mode: not even the bucket's owner can delete or
overwrite it before its retention ends. It does so every
`DIALGUARD_AUDIT_ANCHOR_INTERVAL` seconds when the log has grown, and once
more at shutdown. A rewrite or a cut tail behind the newest anchor then no
longer matches it.

An anchor's name carries what a check needs, so checking many anchors is one
listing: `audit-anchors/<seq>-<legacy_until>-<hash>.json`. Its body repeats
them and adds the MAC, when it was written, and the hash of every entry since
the anchor before, so that a broken anchor names the first entry that no
longer matches. Object names, bodies and the bucket are documented in
docs/audit.md for an outside auditor.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from minio.commonconfig import COMPLIANCE
from minio.retention import Retention
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.audit.chain import Anchor, AuditEntry
from recording.db.engine import as_utc
from recording.store import Copy

log = logging.getLogger(__name__)

PREFIX = "audit-anchors/"
_NAME = re.compile(r"^audit-anchors/(\d{12})-(\d{12})-([0-9a-f]{64})\.json$")
#: At most this many entry hashes go into one anchor's body (the first after an upgrade
#: of a large log would otherwise be huge); older ones are still covered by the head's hash.
MAX_HASHES = 20_000


def anchor_name(seq: int, legacy_until: int, digest: str) -> str:
    return f"{PREFIX}{seq:012d}-{legacy_until:012d}-{digest}.json"


def parse_name(name: str, written_at: datetime) -> Anchor | None:
    match = _NAME.match(name)
    if match is None:
        return None
    return Anchor(
        seq=int(match[1]),
        legacy_until=int(match[2]),
        hash=match[3],
        written_at=written_at,
        name=name,
    )


@dataclass(frozen=True)
class AnchorStore:
    """Where anchors are kept: the primary copy's bucket, under `audit-anchors/`."""

    copy: Copy
    retention_days: int = 3650

    @property
    def where(self) -> str:
        return f"{self.copy.target.label}/{PREFIX}"

    def put(self, anchor: Anchor, body: bytes, now: datetime) -> None:
        until = (now + timedelta(days=self.retention_days)).replace(microsecond=0)
        self.copy.client.put_object(
            self.copy.target.bucket,
            anchor.name,
            io.BytesIO(body),
            len(body),
            content_type="application/json",
            retention=Retention(COMPLIANCE, until),
        )

    def anchors(self) -> list[Anchor]:
        """Every anchor, oldest entry first; `written_at` is storage's own time of the object."""
        found = []
        for obj in self.copy.client.list_objects(
            self.copy.target.bucket, prefix=PREFIX, recursive=True
        ):
            name = obj.object_name or ""
            written = obj.last_modified or datetime.fromtimestamp(0, UTC)
            anchor = parse_name(name, as_utc(written))
            if anchor is not None:
                found.append(anchor)
        return sorted(found, key=lambda a: (a.seq, a.written_at))

    def with_hashes(self, anchor: Anchor) -> Anchor:
        """The anchor with the entry hashes its body lists (to name the first mismatch)."""
        response = self.copy.client.get_object(self.copy.target.bucket, anchor.name)
        try:
            body = json.loads(response.read())
        finally:
            response.close()
            response.release_conn()
        hashes = tuple((int(seq), str(digest)) for seq, digest in body.get("hashes", []))
        return Anchor(
            seq=anchor.seq,
            hash=anchor.hash,
            written_at=anchor.written_at,
            legacy_until=anchor.legacy_until,
            name=anchor.name,
            hashes=hashes,
        )


def legacy_until(session: Session) -> int:
    """The last entry of the legacy segment (no MAC), or the head if none has a MAC yet."""
    first_mac = session.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.mac.is_not(None)))
    if first_mac is not None:
        return int(first_mac) - 1
    head = session.scalar(select(func.max(AuditEntry.seq)))
    return int(head or 0)


def write_anchor(
    sessions: sessionmaker[Session], store: AnchorStore, now: datetime, since: int = 0
) -> Anchor | None:
    """Anchor the chain's head now (None while the log is empty); `since`: the last anchored seq."""
    with sessions() as session:
        head = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        if head is None:
            return None
        legacy = legacy_until(session)
        start = max(since, head.seq - MAX_HASHES)
        hashes = [
            [seq, digest]
            for seq, digest in session.execute(
                select(AuditEntry.seq, AuditEntry.hash)
                .where(AuditEntry.seq > start, AuditEntry.seq <= head.seq)
                .order_by(AuditEntry.seq)
            )
        ]
        anchor = Anchor(
            seq=head.seq,
            hash=head.hash,
            written_at=now,
            legacy_until=legacy,
            name=anchor_name(head.seq, legacy, head.hash),
        )
        body = {
            "version": 1,
            "seq": head.seq,
            "hash": head.hash,
            "mac": head.mac,
            "at": as_utc(head.at).isoformat(),
            "written_at": as_utc(now).isoformat(),
            "legacy_until": legacy,
            "hashes": hashes,
        }
    store.put(anchor, json.dumps(body, separators=(",", ":")).encode(), now)
    return anchor


class Anchorer:
    """Writes an anchor whenever the log has grown, every `interval_s`, and once at `stop`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: AnchorStore,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.interval_s = interval_s
        self.clock = clock
        self.last: tuple[int, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def anchor_now(self) -> Anchor | None:
        """Write an anchor if the head moved since the last one; never raises."""
        with self._lock:
            try:
                if self.last is None:
                    known = self.store.anchors()
                    self.last = (known[-1].seq, known[-1].hash) if known else (0, "")
                with self.sessions() as session:
                    head = session.execute(
                        select(AuditEntry.seq, AuditEntry.hash)
                        .order_by(AuditEntry.seq.desc())
                        .limit(1)
                    ).first()
                if head is None or (head[0], head[1]) == self.last:
                    return None
                anchor = write_anchor(self.sessions, self.store, self.clock(), self.last[0])
            except Exception as exc:  # storage or database away: the next round tries again
                log.warning(
                    "audit anchor not written; will retry", extra={"reason": type(exc).__name__}
                )
                return None
            if anchor is not None:
                self.last = (anchor.seq, anchor.hash)
                log.info("audit anchor written", extra={"seq": anchor.seq})
            return anchor

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.anchor_now()

    def start(self) -> None:
        self.anchor_now()
        self._thread = threading.Thread(target=self._run, name="audit-anchors", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and anchor the head once more (shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.anchor_now()

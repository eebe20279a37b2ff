"""The audit log: append-only and hash-chained.

Each entry carries the hash of the one before it, so editing or removing any
entry breaks every hash after it, which `verify_chain` (and `dialguard audit
verify`) reports. Entries are numbered by `seq` with a unique constraint, so
two writers racing for the same place cannot fork the chain: the loser
retries on top of the winner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from recording.db.engine import Base, as_utc

GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    reason: str | None,
    detail: str,
) -> str:
    canonical = json.dumps(
        [prev_hash, seq, as_utc(at).isoformat(), actor, action, target, reason, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    now: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    attempts: int = 5,
) -> AuditEntry:
    """Append one entry and commit it; the caller's pending changes are committed with it."""
    body = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for _ in range(attempts):
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        entry = AuditEntry(
            seq=seq,
            at=now,
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            detail=body,
            prev_hash=prev,
            hash=entry_hash(prev, seq, now, actor, action, target, reason, body),
        )
        session.add(entry)
        try:
            session.commit()
            return entry
        except IntegrityError:  # another writer took this seq: chain on top of theirs
            session.rollback()
    raise RuntimeError("audit log is too contended to append to")


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(entries: Iterable[AuditEntry]) -> list[ChainProblem]:
    """Every edited, removed or inserted entry, by the first sequence number it breaks."""
    problems = []
    expected_seq, prev = 1, GENESIS
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(
                ChainProblem(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing")
            )
        if entry.prev_hash != prev:
            problems.append(ChainProblem(entry.seq, "does not follow the entry before it"))
        actual = entry_hash(
            entry.prev_hash,
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.reason,
            entry.detail,
        )
        if actual != entry.hash:
            problems.append(ChainProblem(entry.seq, "was edited after it was written"))
        expected_seq, prev = entry.seq + 1, entry.hash
    return problems


def verify(session: Session) -> list[ChainProblem]:
    return verify_chain(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all())


#: What packages below `api` are given when they must leave an audit trail.
AuditFn = Callable[[str, str, str, str | None, dict[str, Any]], None]


def audit_to(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> AuditFn:
    """An `AuditFn` writing to this database: what the API hands to lower packages."""

    def write(
        actor: str, action: str, target: str, reason: str | None, detail: dict[str, Any]
    ) -> None:
        with sessions() as session:
            record(session, actor, action, target, clock(), reason=reason, detail=detail)

    return write

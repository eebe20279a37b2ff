"""A stored recording's life after the call: holds, longer retention, and its end.

Retention only ever grows (COMPLIANCE mode makes S3 refuse anything else, and
`retention.extend` refuses before S3 has to). A legal hold keeps a recording
past its retention date until a supervisor lifts it. When both are over, the
expiry job deletes every version of both copies' keys (the recorded one
and any spare a twice-completed PUT left), destroys the wrapped data
key (crypto-erasure: any copy that survives somewhere is unreadable), and
leaves a proof (id, ciphertext hash, time) in the audit log. What other
packages derived from the recording (its transcript, search rows, QA
results) must not outlive it, but `recording` cannot know their tables:
the caller hands `expire` a `Forget` that deletes them in the same
transaction that marks the recording deleted.

Each object's lifecycle tag follows its hold and retention (see
`recording.storage_rules`): storage's own expiry backstop must never hide a
held recording, or one whose retention was lengthened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recording.db.engine import as_utc
from recording.models import Recording, RecordingStatus
from recording.retention import deletable, extend
from recording.store import Copy, RecordingNotFound, RecordingUnavailable, object_tags
from recording.versions import listed

log = logging.getLogger(__name__)

#: What a store answers for a version that is already gone (storage's lifecycle took it).
_GONE = {"NoSuchKey", "NoSuchVersion"}

#: (actor, action, target, reason, detail): the audit log, injected by the caller.
Audit = Callable[[str, str, str, str | None, dict[str, Any]], None]

#: Deletes, in the session given and without committing, what was derived from these
#: recordings (transcripts, their search rows, QA results); returns how many rows of each
#: kind went, for the audit entry. Injected by the caller: its tables are above `recording`.
Forget = Callable[[Session, Sequence[str]], dict[str, int]]


@dataclass(frozen=True)
class Expired:
    recording_id: str
    ciphertext_sha256: str


def _stored(session: Session, recording_id: str) -> Recording:
    row = session.get(Recording, recording_id)
    if row is None:
        raise RecordingNotFound(f"no recording {recording_id}", hint="check the recording id")
    if row.status is not RecordingStatus.STORED:
        raise RecordingUnavailable(
            f"recording {recording_id} is {row.status.value}, not stored",
            hint="holds and retention apply to recordings stored in both copies",
        )
    return row


def set_legal_hold(
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    recording_id: str,
    on: bool,
    actor: str,
    reason: str,
    audit: Audit,
) -> None:
    """Place or lift a legal hold on both copies; the database follows S3, not the reverse."""
    with sessions() as session:
        row = _stored(session, recording_id)
        row.legal_hold = on  # committed only once both copies carry the hold and its tag
        for copy in copies:
            version = getattr(row, f"{copy.name}_version")
            if on:
                copy.client.enable_object_legal_hold(copy.target.bucket, row.object_key, version)
            else:
                copy.client.disable_object_legal_hold(copy.target.bucket, row.object_key, version)
            copy.client.set_object_tags(
                copy.target.bucket, row.object_key, object_tags(row), version_id=version
            )
        session.commit()
    audit(actor, "legal-hold-on" if on else "legal-hold-off", recording_id, reason, {})


def extend_retention(
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    recording_id: str,
    until: datetime,
    actor: str,
    reason: str,
    audit: Audit,
) -> datetime:
    """Keep a recording longer (a client asking for 3 or 5 years); never shorter."""
    with sessions() as session:
        row = _stored(session, recording_id)
        new_until = extend(as_utc(row.retain_until), until)
        previous = as_utc(row.retain_until)
        row.retain_until = new_until
        for copy in copies:
            version = getattr(row, f"{copy.name}_version")
            copy.client.set_object_retention(
                copy.target.bucket, row.object_key, Retention(COMPLIANCE, new_until), version
            )
            # The longer retention is a longer lifecycle class: no rule may fire before it.
            copy.client.set_object_tags(
                copy.target.bucket, row.object_key, object_tags(row), version_id=version
            )
        session.commit()
    audit(
        actor,
        "retention-extended",
        recording_id,
        reason,
        {"from": previous.isoformat(), "to": new_until.isoformat()},
    )
    return new_until


def _remove_all(copy: Copy, row: Recording) -> list[str]:
    """Delete every version of a copy's key; returns why each refused one is still there.

    Not only the version the database names: a spare version (a PUT storage
    completed twice) is billed, counted by audits and, since storage may
    not know it is the same call, kept until someone deletes it. Delete
    markers go too. A version storage's lifecycle already removed counts as done.
    """
    kept: list[str] = []
    recorded = getattr(row, f"{copy.name}_version")
    versions = listed(copy, row.object_key)
    if recorded not in {v.version_id for v in versions}:
        log.info(
            "copy already removed by storage's lifecycle expiry",
            extra={"recording": row.id, "copy": copy.name},
        )
    for version in versions:
        try:
            copy.client.remove_object(copy.target.bucket, row.object_key, version.version_id)
        except S3Error as exc:
            if exc.code not in _GONE:
                kept.append(f"{copy.target.label} version {version.version_id} ({exc.code})")
    return kept


def expire(
    sessions: sessionmaker[Session],
    copies: tuple[Copy, Copy],
    now: datetime,
    audit: Audit,
    forget: Forget,
    limit: int = 100,
) -> list[Expired]:
    """Delete recordings whose retention and holds are over, with a proof for each.

    `forget` is required, not optional: a caller that left it out would erase
    the audio and keep its words. It runs in the transaction that marks the
    recording deleted, so neither is committed without the other; if it
    fails, the recording stays as it was (its copies already gone) and the
    next run finishes it.
    """
    done = []
    with sessions() as session:
        rows = session.scalars(
            select(Recording)
            .where(
                Recording.status == RecordingStatus.STORED,
                Recording.retain_until <= now,
                Recording.legal_hold.is_(False),
            )
            .limit(limit)
        ).all()
        for row in rows:
            if not deletable(now, as_utc(row.retain_until), row.legal_hold):
                continue
            try:
                kept = [refused for copy in copies for refused in _remove_all(copy, row)]
            except Exception as exc:  # storage unreachable or refusing to list: retry
                log.warning(
                    "expiry refused by storage; will retry",
                    extra={"recording": row.id, "reason": type(exc).__name__},
                )
                continue
            if kept:  # S3 still holds some (clock skew, a hold set in S3): say which, retry
                log.warning(
                    "expiry refused by storage for %d version(s); will retry",
                    len(kept),
                    extra={"recording": row.id, "versions": kept},
                )
                continue
            proof = Expired(row.id, row.ciphertext_sha256)
            retained_until = as_utc(row.retain_until).isoformat()
            row.status = RecordingStatus.DELETED
            row.wrapped_dek = None  # crypto-erasure: no copy anywhere can be decrypted now
            row.kek_id = None
            try:
                derived = forget(session, [row.id])
                session.commit()
            except Exception as exc:  # the database refused: nothing of this one is committed
                session.rollback()
                log.warning(
                    "expiry could not delete what was derived from the recording; will retry",
                    extra={"recording": proof.recording_id, "reason": type(exc).__name__},
                )
                continue
            audit(
                "retention-job",
                "recording-deleted",
                proof.recording_id,
                "retention ended",
                {
                    "ciphertext_sha256": proof.ciphertext_sha256,
                    "retained_until": retained_until,
                    "derived_deleted": derived,
                },
            )
            done.append(proof)
    return done

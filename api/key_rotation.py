"""Key-encryption keys as an admin sees them (ids and use, never material), and rotation.

Rotation adds a new KEK, makes it current, then re-wraps every data key
under it: recordings', debtor records', and those of single sealed values
(one-time-code secrets, queued click-to-call numbers); audio and sealed data
are not touched. Older KEKs stay in the key ring, so a backup restored from
before the rotation still opens. Each re-wrap is a conditional update on the
old value, so a recording crypto-erased meanwhile by the retention job stays
erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from api.accounts.models import User
from dialer.debtors import Debtor
from dialer.models import CallRequest
from recording.fields import rewrap_text, sealed_under
from recording.keys import FileKeyRing, KeyWrapper, WrappedKey
from recording.models import Recording

BATCH = 500


@dataclass(frozen=True)
class KeyUse:
    kek_id: str
    current: bool
    in_ring: bool  # False: something is wrapped under a key this ring no longer holds
    recordings: int
    debtors: int


def key_usage(session: Session, keys: KeyWrapper) -> list[KeyUse]:
    """Every KEK id the ring holds or the database refers to, current first."""
    current = keys.current_kek_id
    ring = list(keys.kek_ids) if isinstance(keys, FileKeyRing) else [current]
    recordings: dict[str, int] = {
        kek_id: n
        for kek_id, n in session.execute(
            select(Recording.kek_id, func.count()).group_by(Recording.kek_id)
        )
        if kek_id is not None  # crypto-erased: no key left
    }
    debtors: dict[str, int] = {
        kek_id: n
        for kek_id, n in session.execute(
            select(Debtor.kek_id, func.count()).group_by(Debtor.kek_id)
        )
    }
    ids = [*ring, *sorted((set(recordings) | set(debtors)) - set(ring))]
    found = [
        KeyUse(
            kek_id,
            kek_id == current,
            kek_id in ring,
            recordings.get(kek_id, 0),
            debtors.get(kek_id, 0),
        )
        for kek_id in ids
    ]
    return sorted(found, key=lambda use: not use.current)


def _rewrap(
    sessions: sessionmaker[Session],
    keys: KeyWrapper,
    row_id: InstrumentedAttribute[Any],
    kek_id: InstrumentedAttribute[Any],
    blob: InstrumentedAttribute[Any],
) -> int:
    current, count = keys.current_kek_id, 0
    last: Any = None  # keyset paging: ids are ints for debtors, hex strings for recordings
    while True:
        with sessions() as session:
            query = select(row_id, kek_id, blob).where(kek_id.is_not(None), kek_id != current)
            if last is not None:
                query = query.where(row_id > last)
            rows = session.execute(query.order_by(row_id).limit(BATCH)).all()
            if not rows:
                return count
            for rid, old_id, old_blob in rows:
                last = rid
                if old_blob is None:
                    continue
                fresh = keys.rewrap(WrappedKey(old_id, old_blob))
                changed = session.execute(
                    update(row_id.class_)
                    .where(row_id == rid, kek_id == old_id, blob == old_blob)
                    .values({kek_id.key: fresh.kek_id, blob.key: fresh.blob})
                )
                count += changed.rowcount  # type: ignore[attr-defined]
            session.commit()


def _rewrap_fields(
    sessions: sessionmaker[Session],
    keys: KeyWrapper,
    row_id: InstrumentedAttribute[Any],
    sealed: InstrumentedAttribute[Any],
) -> int:
    """Sealed single values (recording.fields) whose data key is under an older KEK."""
    current, count, last = keys.current_kek_id, 0, 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(row_id, sealed)
                .where(sealed.is_not(None), row_id > last)
                .order_by(row_id)
                .limit(BATCH)
            ).all()
            if not rows:
                return count
            for rid, old in rows:
                last = rid
                if sealed_under(old) == current:
                    continue
                changed = session.execute(
                    update(row_id.class_)
                    .where(row_id == rid, sealed == old)
                    .values({sealed.key: rewrap_text(keys, old)})
                )
                count += changed.rowcount  # type: ignore[attr-defined]
            session.commit()


@dataclass(frozen=True)
class Rewrapped:
    recordings: int
    debtors: int
    fields: int  # one-time-code secrets and queued click-to-call numbers


def rewrap_all(sessions: sessionmaker[Session], keys: KeyWrapper) -> Rewrapped:
    """Every data key under an older KEK re-wrapped under the current one, in batches."""
    return Rewrapped(
        _rewrap(sessions, keys, Recording.id, Recording.kek_id, Recording.wrapped_dek),
        _rewrap(sessions, keys, Debtor.id, Debtor.kek_id, Debtor.wrapped_key),
        _rewrap_fields(sessions, keys, User.id, User.totp_sealed)
        + _rewrap_fields(sessions, keys, CallRequest.id, CallRequest.number_sealed),
    )

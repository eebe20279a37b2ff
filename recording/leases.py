"""Who may upload a recording now: a lease in the recordings table.

Without it the uploader, a `dialguard recording store` beside it and a
restarted uploader each sent the same recording, and storage kept every
copy. A lease is taken with one conditional UPDATE (status SPOOLED, and no
lease or an expired one, or already ours) and its row count says whether we
won; SQLite serialises writers and PostgreSQL re-checks the WHERE clause of
a row another transaction just updated, so of two claimers exactly one wins
on both databases. No SELECT ... FOR UPDATE, no advisory locks.

A lease lasts `LEASE` and is renewed before every PUT, so it outlives any
one request (client timeouts are far shorter). An uploader that died leaves
its lease behind: on its own host it is broken at once (the owner names
host and pid, and a dead pid holds nothing); from another host it is taken
over once it expires. Taking over is safe even if the old owner's last PUT
is still travelling: see `recording.store` (conditional PUT, and the
`<copy>_put_at` mark that makes the next owner look before it sends).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from recording.models import Recording, RecordingStatus

#: How long a claim holds without renewal: far longer than one S3 request may take.
LEASE = timedelta(seconds=120)

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """Leases are compared across processes (and hosts): always the real UTC time."""
    return datetime.now(UTC)


def lease_owner(role: str) -> str:
    """`role@host:pid`: who holds a lease, readable in health lines and logs."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str) -> bool:
    """True if `owner` is a process of this host that no longer runs."""
    _, _, place = owner.rpartition("@")
    host, _, pid = place.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's process: only its expiry frees the lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def claim(
    session: Session, recording_id: str, owner: str, now: datetime, ttl: timedelta = LEASE
) -> bool:
    """Take (or renew) the upload lease of a spooled recording; True if `owner` holds it now.

    Commits: the lease must be visible to the other claimers before we act on it.
    """
    held = session.execute(
        select(Recording.lease_owner).where(Recording.id == recording_id)
    ).scalar_one_or_none()
    free = or_(
        Recording.lease_until.is_(None),
        Recording.lease_until < now,
        Recording.lease_owner == owner,
    )
    if held is not None and held != owner and _owner_gone(held):
        free = or_(free, Recording.lease_owner == held)  # its holder died on this host
    result = session.execute(
        update(Recording)
        .where(
            Recording.id == recording_id,
            Recording.status == RecordingStatus.SPOOLED,
            free,
        )
        .values(lease_owner=owner, lease_until=now + ttl)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, recording_id: str, owner: str) -> None:
    """Give a lease back (only our own): the next claimer need not wait for its expiry."""
    session.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def claimable(session: Session, now: datetime, owner: str, limit: int) -> list[str]:
    """Ids of spooled recordings `owner` may claim now, oldest first.

    Includes leases of processes of this host that died (a killed uploader,
    an interrupted `recording store`): they are broken here, not after `LEASE`.
    """
    leased = session.execute(
        select(Recording.id, Recording.lease_owner).where(
            Recording.status == RecordingStatus.SPOOLED,
            Recording.lease_until >= now,
            Recording.lease_owner != owner,
        )
    ).all()
    for recording_id, holder in leased:
        if holder is not None and _owner_gone(holder):
            session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.lease_owner == holder)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
    session.commit()
    return list(
        session.scalars(
            select(Recording.id)
            .where(
                Recording.status == RecordingStatus.SPOOLED,
                or_(
                    Recording.lease_until.is_(None),
                    Recording.lease_until < now,
                    Recording.lease_owner == owner,
                ),
            )
            .order_by(Recording.created_at)
            .limit(limit)
        )
    )

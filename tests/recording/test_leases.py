"""The upload lease: of two claimers one wins, an expired or orphaned lease is taken over.

On SQLite and PostgreSQL alike: the claim is one conditional UPDATE whose row
count decides, so no database-specific locking is involved.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from recording.db.engine import session_factory
from recording.leases import claim, claimable, lease_owner, release
from recording.models import Recording, RecordingStatus
from tests.factories import T0, add_recording


def _spooled(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        row = add_recording(session)
        session.execute(
            update(Recording)
            .where(Recording.id == row.id)
            .values(status=RecordingStatus.SPOOLED, created_at=T0)
        )
        session.commit()
        return row.id


def _holder(sessions: sessionmaker[Session], recording_id: str) -> str | None:
    with sessions() as session:
        row = session.get(Recording, recording_id)
        assert row is not None
        return row.lease_owner


def test_of_many_claimers_at_once_exactly_one_holds_the_recording(engine: Engine) -> None:
    sessions = session_factory(engine)
    recording_id = _spooled(sessions)
    claimers = [f"uploader@host-{i}:{100 + i}" for i in range(6)]
    start = threading.Barrier(len(claimers))
    won: dict[str, bool] = {}

    def race(owner: str) -> None:
        with sessions() as session:
            start.wait()
            won[owner] = claim(session, recording_id, owner, T0)

    threads = [threading.Thread(target=race, args=(owner,)) for owner in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [owner for owner, ok in won.items() if ok]
    assert len(won) == len(claimers) and len(winners) == 1, won
    assert _holder(sessions, recording_id) == winners[0]


def test_a_lease_holds_until_it_expires_then_another_takes_it_over(engine: Engine) -> None:
    sessions = session_factory(engine)
    recording_id = _spooled(sessions)
    ttl = timedelta(seconds=60)
    with sessions() as session:
        assert claim(session, recording_id, "uploader@elsewhere:1", T0, ttl)
        assert not claim(session, recording_id, "store@elsewhere:2", T0 + ttl / 2, ttl)
        assert claim(session, recording_id, "uploader@elsewhere:1", T0 + ttl / 2, ttl)  # renewed
        assert not claim(session, recording_id, "store@elsewhere:2", T0 + ttl, ttl)
        # The crashed holder never renews: once its lease has run out, it is taken over.
        assert claim(session, recording_id, "store@elsewhere:2", T0 + ttl * 2, ttl)
        assert claimable(session, T0 + ttl * 2, "uploader@elsewhere:1", 10) == []
    assert _holder(sessions, recording_id) == "store@elsewhere:2"


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(engine: Engine) -> None:
    sessions = session_factory(engine)
    recording_id = _spooled(sessions)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = lease_owner("uploader").rsplit(":", 1)[0] + f":{gone.stdout.strip()}"
    with sessions() as session:
        assert claim(session, recording_id, dead, T0)
        # A restarted uploader need not wait two minutes for a killed one's lease.
        assert claimable(session, T0, "uploader@new:1", 10) == [recording_id]
        assert claim(session, recording_id, lease_owner("uploader"), T0)
    assert _holder(sessions, recording_id) == lease_owner("uploader")


def test_a_live_holder_on_this_host_keeps_its_lease(engine: Engine) -> None:
    sessions = session_factory(engine)
    recording_id = _spooled(sessions)
    alive = lease_owner("store")  # this very process
    with sessions() as session:
        assert claim(session, recording_id, alive, T0)
        assert claimable(session, T0, "uploader@new:1", 10) == []
        assert not claim(session, recording_id, "uploader@new:1", T0)


def test_only_the_holder_releases_and_a_stored_recording_is_never_claimed(engine: Engine) -> None:
    sessions = session_factory(engine)
    recording_id = _spooled(sessions)
    with sessions() as session:
        assert claim(session, recording_id, "uploader@h:1", T0)
        release(session, recording_id, "store@h:2")  # not its lease: nothing happens
        assert not claim(session, recording_id, "store@h:2", T0)
        release(session, recording_id, "uploader@h:1")
        assert claim(session, recording_id, "store@h:2", T0)
        release(session, recording_id, "store@h:2")
        session.execute(
            update(Recording)
            .where(Recording.id == recording_id)
            .values(status=RecordingStatus.STORED)
        )
        session.commit()
        assert not claim(session, recording_id, "uploader@h:1", T0)

"""Migrations and tables, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from api.accounts.users import create_user, verify_password
from api.errors import UserError
from api.migrate import current_revision, head_revision, pending_revisions, upgrade
from recording.db.engine import make_engine, redact_url, session_factory
from recording.db.heartbeats import STALE_AFTER, beat, forget, live_instances

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_fresh_database_migrates_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    pending = pending_revisions(engine)
    assert pending[0] == "0001" and pending[-1] == head_revision(engine)
    assert pending == sorted(pending)  # oldest first
    upgrade(engine)
    upgrade(engine)  # a second run is harmless
    assert current_revision(engine) == head_revision(engine)
    assert pending_revisions(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert {"users", "component_heartbeats", "recordings", "transcripts"} <= tables
    engine.dispose()


def test_create_user_stores_only_an_argon2id_hash(engine: Engine) -> None:
    with session_factory(engine)() as session:
        user = create_user(session, "qa.lin", "qa", "correct horse battery", NOW)
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert verify_password(user, "correct horse battery")
        assert not verify_password(user, "correct horse batterY")


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("Bad Name", "qa", "long enough password", "not allowed"),
        ("agent7", "boss", "long enough password", "unknown role"),
        ("agent7", "agent", "short", "too short"),
    ],
)
def test_bad_accounts_are_refused(
    engine: Engine, username: str, role: str, password: str, message: str
) -> None:
    with session_factory(engine)() as session, pytest.raises(UserError, match=message):
        create_user(session, username, role, password, NOW)


def test_duplicate_user_is_refused(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        create_user(session, "sup.wang", "supervisor", "a long passphrase", NOW)
    with sessions() as session, pytest.raises(UserError, match="already exists"):
        create_user(session, "sup.wang", "agent", "another passphrase", NOW)


def test_heartbeats_expire_and_are_forgotten(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        beat(session, "uploader", "host-a:1", "0 waiting", NOW, NOW)
        beat(session, "uploader", "host-a:1", "3 waiting", NOW + timedelta(seconds=5), NOW)
        beat(session, "uploader", "host-b:2", "1 waiting", NOW - STALE_AFTER * 2, NOW)
    with sessions() as session:
        live = live_instances(session, "uploader", NOW + timedelta(seconds=6))
        assert [(row.instance, row.detail) for row in live] == [("host-a:1", "3 waiting")]
        assert live_instances(session, "transcriber", NOW) == []
        forget(session, "uploader", "host-a:1")
        assert live_instances(session, "uploader", NOW + timedelta(seconds=6)) == []


def test_database_urls_are_shown_without_passwords() -> None:
    shown = redact_url("postgresql+psycopg://dialguard:s3cr3t@db.internal:5432/dg")
    assert "s3cr3t" not in shown
    assert "db.internal" in shown


def test_migrations_match_the_models(engine: Engine) -> None:
    """A model change without its migration would only show up on a customer's database."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from api.migrate import include_object
    from api.tables import target_metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, target_metadata) == []


def test_0026_fills_flag_scores_from_the_stored_results(engine: Engine) -> None:
    """Flags stored before 0026 get the score their result JSON holds, so they sort too."""
    from alembic import command
    from sqlalchemy import select

    from api.migrate import alembic_config
    from qa_scoring.models import QaFlag
    from qa_scoring.store import score_transcript
    from tests.factories import T0, add_recording, add_transcript
    from transcribe.models import TranscriptRow

    sessions = session_factory(engine)
    with sessions() as session:
        recording = add_recording(session, agent="agent7", recorded_at=T0)
        add_transcript(
            session, recording.id, [("agent", 10.0, "再不还就让你坐牢")], probability=0.8
        )
        tid = session.scalar(select(TranscriptRow.id))
        assert tid is not None
        score_transcript(session, tid, "cn-collections", T0)
        stored = {f.id: f.score for f in session.scalars(select(QaFlag))}
    assert stored and all(s == pytest.approx(0.8) for s in stored.values())
    command.downgrade(alembic_config(engine), "0025")
    assert "score" not in {c["name"] for c in inspect(engine).get_columns("qa_flags")}
    upgrade(engine)
    with sessions() as session:
        assert {f.id: f.score for f in session.scalars(select(QaFlag))} == stored


def test_0028_builds_its_index_while_transcripts_are_still_written(database_url: str) -> None:
    """The trigram index of 10 million segments takes minutes to build; a running site's
    transcribe workers keep writing meanwhile. A plain CREATE INDEX queues for a lock that
    every insert then queues behind (here: for its whole wait on an open write)."""
    import threading

    import psycopg
    from sqlalchemy import text

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's index is FTS5's and unchanged by 0028")
    engine = make_engine(database_url)
    upgrade(engine, "0027")
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as writing, psycopg.connect(dsn, autocommit=True) as watcher:
        # A transcript write in flight, not yet committed, when the upgrade starts.
        writing.execute("LOCK TABLE transcript_segments IN ROW EXCLUSIVE MODE")
        failed: list[BaseException] = []

        def migrate() -> None:
            try:
                upgrade(engine, "0028")
            except BaseException as exc:  # reported on the test's thread
                failed.append(exc)

        migration = threading.Thread(target=migrate)
        migration.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE query ILIKE 'CREATE INDEX%%' AND wait_event_type = 'Lock'"
        )
        for _ in range(100):
            row = watcher.execute(waiting).fetchone()
            if row and row[0]:
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail("the index build never waited for the open write")
        # Another worker's insert takes the same lock: it gets it at once.
        with psycopg.connect(dsn) as another:
            another.execute("SET lock_timeout = '2s'")
            another.execute("LOCK TABLE transcript_segments IN ROW EXCLUSIVE MODE")
            another.rollback()
        writing.rollback()
        migration.join(60)
    assert not migration.is_alive() and not failed, failed
    assert current_revision(engine) == "0028"
    with engine.connect() as connection:
        indexes: dict[str, bool] = dict(
            connection.execute(
                text(
                    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                    "ON c.oid = i.indexrelid WHERE i.indrelid = 'transcript_segments'::regclass"
                )
            ).all()
        )
    assert indexes.get("ix_transcript_segments_joined_trgm") is True
    assert "ix_transcript_segments_text_trgm" not in indexes
    engine.dispose()


def _upgrade_from_url(url: str) -> None:
    upgrade(make_engine(url))


def test_hosts_starting_at_once_migrate_one_after_the_other(database_url: str) -> None:
    """Every host's `dialguard up` upgrades the shared database first: three at once on a fresh
    PostgreSQL must all start, not fail on a table another has just made."""
    import multiprocessing

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is one host's database, upgraded by its one supervisor")
    spawn = multiprocessing.get_context("spawn")
    hosts = [spawn.Process(target=_upgrade_from_url, args=(database_url,)) for _ in range(3)]
    for host in hosts:
        host.start()
    for host in hosts:
        host.join(300)
    assert [host.exitcode for host in hosts] == [0, 0, 0]
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()

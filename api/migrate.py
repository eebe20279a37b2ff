"""Alembic migrations, run from code: `dialguard up` and `dialguard db upgrade`."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock held while one process migrates ("dgmigrat" in ASCII).
_MIGRATION_LOCK = 0x6467_6D69_6772_6174


#: Search structures made by hand in migration 0003 (FTS5 tables, GIN indexes): not
#: expressible as models, so autogenerate must not propose dropping them.
_HAND_MADE = (
    "segment_tri",
    "segment_grams",
    "ix_transcript_segments_text_trgm",
    "ix_transcript_segments_joined_trgm",  # migration 0028 replaced text_trgm
    "ix_transcript_segments_grams_tsv",
    # Kamailio's usrloc schema and the auth view over sip_accounts (migration 0027)
    "location",
    "version",
    "kamailio_subscriber",
)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (reflected and name is not None and name.startswith(_HAND_MADE))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_revisions(engine: Engine) -> list[str]:
    """Revisions between the database and the code, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    current = current_revision(engine)
    revisions = [rev.revision for rev in script.iterate_revisions("heads", current)]
    return list(reversed(revisions))


def known_revision(engine: Engine, revision: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config(engine))
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises ResolutionError for a revision it does not ship
        return False


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade, one process at a time on PostgreSQL: every host's `dialguard up` migrates the
    shared database first, and two on a fresh one would both create the same tables (each
    migration commits on its own, see env.py). The lock is held on a connection of its own;
    the one that waited finds nothing left to do. SQLite is one host's, migrated by its one
    supervisor."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    # Tried, not waited for, and in autocommit: a transaction left open, or a statement
    # waiting for the lock, is a snapshot that the CREATE INDEX CONCURRENTLY of the
    # migration being run would wait for in turn.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        try_lock = text("SELECT pg_try_advisory_lock(:key)")
        while not lock.execute(try_lock, {"key": _MIGRATION_LOCK}).scalar():
            time.sleep(0.5)
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})

"""Alembic migrations, run from code: `dialguard up` and `dialguard db upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


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
    command.upgrade(alembic_config(engine), revision)

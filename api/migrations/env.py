"""Alembic environment: the engine comes from `api.migrate`, never from a config file."""

from __future__ import annotations

from alembic import context

from api.migrate import include_object
from api.tables import target_metadata
from recording.db.engine import make_engine

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=getattr(connection, "dialect").name == "sqlite",  # noqa: B009
        compare_type=True,
        include_object=include_object,
        # Each migration commits on its own, so one may build an index CONCURRENTLY
        # (an autocommit block) without committing half of another.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


engine = config.attributes.get("engine") or make_engine(
    context.get_x_argument(as_dictionary=True)["url"]
)
with engine.connect() as conn:
    _run(conn)

"""A throw-away database for one benchmark run, on either backend.

SQLite: a new file in `folder`. PostgreSQL: a database created for the run
on the server at $DIALGUARD_TEST_PG (the machine's own by default) and
dropped afterwards, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_ADMIN_URL = os.environ.get("DIALGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql", "both")


def backends(choice: str) -> list[str]:
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


@contextlib.contextmanager
def scratch_database(backend: str, folder: Path, keep: bool = False) -> Iterator[str]:
    """The SQLAlchemy URL of an empty database that lasts as long as the `with`.

    `keep` leaves it in place (for measuring a large build again); the caller
    drops it, or deletes the SQLite file, when done.
    """
    if backend == "sqlite":
        if keep:
            folder = Path(tempfile.mkdtemp(prefix="dialguard_bench_"))
        yield f"sqlite:///{folder}/bench.db"
        return
    name = f"dialguard_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

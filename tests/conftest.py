"""Shared test infrastructure: real SeaweedFS, real SQLite and PostgreSQL, SIPp, audio.

Nothing here is a mock: every fixture starts or connects to the real thing on
127.0.0.1 and cleans up after itself.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from minio import Minio
from sqlalchemy.engine import Engine

from api.migrate import upgrade
from api.web.services import Services
from recording.db.engine import make_engine, session_factory
from recording.embedded_s3 import EmbeddedS3
from recording.keys import FileKeyRing
from recording.storage import S3Target, ensure_bucket, make_client
from recording.store import Copy
from tests.helpers import free_port

PG_ADMIN_URL = os.environ.get("DIALGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- object storage ------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """One real SeaweedFS for the whole run, on free loopback ports in a temp dir."""
    s3 = EmbeddedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield s3
    s3.stop()


@pytest.fixture
def bucket_name() -> str:
    return f"t-{secrets.token_hex(6)}"


@pytest.fixture
def locked_target(seaweed: EmbeddedS3, bucket_name: str) -> S3Target:
    """A fresh bucket with object lock on the session SeaweedFS."""
    target = seaweed.target(bucket_name)
    ensure_bucket(make_client(target), target, retention_days=730)
    return target


@pytest.fixture
def s3_client(seaweed: EmbeddedS3) -> Minio:
    return make_client(seaweed.target("unused"))


# --- databases -----------------------------------------------------------------------


def _create_pg_database() -> str:
    name = f"dialguard_test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is needed for the database tests ({exc}); "
            "start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start"
        )
    return name


def _drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend: the same test runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dialguard.db'}"
        return
    name = _create_pg_database()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        _drop_pg_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database of each backend, migrated to head."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


# --- processes, SIPp, audio ----------------------------------------------------------


def _free_port_run(count: int) -> int:
    """The first of `count` consecutive ports free for UDP and TCP, below the RTP range
    (DIALGUARD_DIALER_PORT_BASE must be), so parallel `dialguard up`s do not collide."""
    import random

    while True:
        base = random.randrange(10000, 19000)
        taken = False
        for port in range(base, base + count):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as sock:
                    try:
                        sock.bind(("127.0.0.1", port))
                    except OSError:
                        taken = True
        if not taken:
            return base


@pytest.fixture
def dialguard_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a `dialguard` subprocess with its own data dir and free ports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIALGUARD_") and k not in ("LC_ALL", "LC_MESSAGES")
    }
    env.update(
        # the CLI speaks the shell's language first: a neutral locale, so the site's decides
        LANG="C.UTF-8",
        DIALGUARD_DATA_DIR=str(tmp_path / "data"),
        DIALGUARD_SIP_PORT=str(free_port(socket.SOCK_DGRAM)),
        DIALGUARD_API_PORT=str(free_port()),
        # the Kamailio edge's TLS port and the workers' ports: free ones, not 5061 and 5100
        DIALGUARD_SIP_TLS_PORT=str(free_port()),
        DIALGUARD_DIALER_PORT_BASE=str(_free_port_run(4)),
        DIALGUARD_LOG_LEVEL="WARNING",
        # `dialguard up` sizes its dialer pool to the host (24 workers on 2 cores): two
        # carry every test's calls, and start in seconds on a loaded box.
        DIALGUARD_DIALER_WORKERS="2",
        # cn-default sites default to Chinese; these suites read the English pages and errors
        DIALGUARD_LANGUAGE="en",
    )
    return env


@pytest.fixture
def copies(seaweed: EmbeddedS3, bucket_name: str) -> tuple[Copy, Copy]:
    """A primary and a replica bucket with object lock on the session SeaweedFS."""
    pair = []
    for name, bucket in (("primary", bucket_name), ("replica", bucket_name + "-r")):
        target = seaweed.target(bucket)
        client = make_client(target)
        ensure_bucket(client, target, 730)
        pair.append(Copy(name, target, client))
    return pair[0], pair[1]


@pytest.fixture
def services(engine: Engine, copies: tuple[Copy, Copy], tmp_path: Path) -> Services:
    """What the API is given, all real: database, two buckets, key ring, spool."""
    return Services(
        sessions=session_factory(engine),
        spool=tmp_path / "spool",
        copies=copies,
        keys=FileKeyRing(tmp_path / "keys" / "kek.json"),
    )

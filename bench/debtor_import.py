"""Bulk debtor import speed on SQLite and PostgreSQL.

Usage: python bench/debtor_import.py [--accounts 50000] [--backend sqlite|postgresql|both]

Builds a CSV of synthetic accounts (two numbers each, one call-back window),
imports it into a fresh database (a new file for SQLite; a database created
and dropped for this run on PostgreSQL at $DIALGUARD_TEST_PG), then imports
it again (every account updated, numbers replaced). Prints the time spent
validating and writing, rows per second and the conditions.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.migrate import upgrade
from bench.scratch import BACKENDS, backends, scratch_database
from dialer.debtors import Sealer
from dialer.debtors.bulk_import import Format, import_debtors
from recording.db.engine import make_engine, session_factory
from recording.keys import FileKeyRing


def synthetic_csv(count: int) -> bytes:
    lines = ["client,external_id,name,stage,timezone,numbers,callback_windows"]
    for i in range(count):
        lines.append(
            f"bank-{i % 3},ACC-{i:07d},债务人{i},early,Asia/Shanghai,"
            f'"debtor:138{i:08d};relative:139{i:08d}",Mon-Fri 18:00-20:00'
        )
    return ("\n".join(lines) + "\n").encode()


def run(url: str, data: bytes, keys_dir: Path, accounts: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    sealer = Sealer(FileKeyRing(keys_dir / "kek.json"), os.urandom(32))
    for label in ("first import (all new)", "second import (all updated)"):
        marks: dict[str, float] = {}
        started = time.perf_counter()

        def progress(
            phase: str, done: int, total: int, started: float = started, marks: dict = marks
        ) -> None:
            if done == total:
                marks[phase] = time.perf_counter() - started

        result = import_debtors(
            sessions, data, Format.CSV, sealer, "CN", datetime.now(UTC), progress
        )
        took = time.perf_counter() - started
        assert result.ok and result.rows == accounts, result.errors[:3]
        print(
            f"  {label:<28} {took:6.1f} s  {accounts / took:8,.0f} rows/s  "
            f"(validated in {marks['validated']:.1f} s; "
            f"{result.created:,} new, {result.updated:,} updated)",
            flush=True,
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--backend", choices=BACKENDS, default="both")
    args = parser.parse_args()
    data = synthetic_csv(args.accounts)
    print(
        f"conditions: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.accounts:,} accounts ({len(data) / 1e6:.1f} MB CSV), 2 numbers each, "
        "one transaction per import, batches of 2,000"
    )
    for backend in backends(args.backend):
        with tempfile.TemporaryDirectory() as tmp, scratch_database(backend, Path(tmp)) as url:
            print(f"{backend}:", flush=True)
            run(url, data, Path(tmp), args.accounts)


if __name__ == "__main__":
    main()

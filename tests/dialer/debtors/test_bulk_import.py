"""Bulk import: all rows or none, every bad row named, 50,000 accounts in one go."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.audit.chain import AuditEntry
from dialer.debtors import Debtor, DebtorIn, DebtorNumber, Sealer, find, numbers_of
from dialer.debtors.bulk_import import Format, error_csv, import_debtors
from recording.db.engine import make_engine, session_factory
from recording.keys import FileKeyRing
from tests.helpers import dialguard

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
HEADER = "client,external_id,name,stage,timezone,numbers,callback_windows"


def csv_file(count: int, bad: dict[int, str] | None = None) -> str:
    """`count` accounts; row i (0-based) is replaced by `bad[i]` when given."""
    lines = [HEADER]
    for i in range(count):
        row = (
            f"bank-a,ACC-{i:06d},债务人{i},early,Asia/Shanghai,"
            f'"debtor:138{i:08d};relative:139{i:08d}",Mon-Fri 18:00-20:00'
        )
        lines.append((bad or {}).get(i, row))
    return "\n".join(lines) + "\n"


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(FileKeyRing(tmp_path / "keys" / "kek.json"), os.urandom(32))


def _count(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        debtors = session.scalar(select(func.count()).select_from(Debtor)) or 0
        numbers = session.scalar(select(func.count()).select_from(DebtorNumber)) or 0
    return debtors, numbers


def test_csv_import_then_reimport_updates(engine: Engine, sealer: Sealer) -> None:
    sessions = session_factory(engine)
    seen: list[tuple[str, int, int]] = []
    result = import_debtors(
        sessions, csv_file(30), Format.CSV, sealer, "CN", NOW, lambda *a: seen.append(a)
    )
    assert (result.ok, result.rows, result.created, result.updated) == (True, 30, 30, 0)
    assert seen[-1] == ("written", 30, 30) and ("validated", 30, 30) in seen
    assert _count(sessions) == (30, 60)

    again = csv_file(30).replace("ACC-000003,债务人3,early", "ACC-000003,债务人3,legal")
    result = import_debtors(sessions, again, Format.CSV, sealer, "CN", NOW, batch_size=7)
    assert (result.created, result.updated) == (0, 30)
    assert _count(sessions) == (30, 60)  # numbers replaced, not added
    with sessions() as session:
        debtor = find(session, "bank-a", "ACC-000003")
        assert debtor is not None and debtor.stage == "legal"
        assert sealer.name(debtor) == "债务人3"


def test_json_import(engine: Engine, sealer: Sealer) -> None:
    rows = [
        {
            "client": "bank-b",
            "external_id": f"B{i}",
            "name": f"Debtor {i}",
            "stage": "late",
            "timezone": "Asia/Shanghai",
            "numbers": [
                {"role": "debtor", "number": f"+86138{i:08d}"},
                {"role": "employer", "number": "+861065529988"},
            ],
            "callback_windows": [{"days": "Sat,Sun", "start": "10:00", "end": "12:00"}],
        }
        for i in range(5)
    ]
    sessions = session_factory(engine)
    result = import_debtors(
        sessions, json.dumps({"debtors": rows}).encode(), Format.JSON, sealer, "CN", NOW
    )
    assert (result.ok, result.created) == (True, 5)
    with sessions() as session:
        debtor = find(session, "bank-b", "B4")
        assert debtor is not None
        assert [(n.role, n.number_masked) for n in numbers_of(session, debtor)] == [
            ("debtor", "+86138****0004"),
            ("employer", "+8610****9988"),
        ]


def test_one_bad_row_among_many_writes_nothing(engine: Engine, sealer: Sealer) -> None:
    sessions = session_factory(engine)
    data = csv_file(
        500,
        bad={
            199: 'bank-a,ACC-000199,Someone,early,Mars/Base,"debtor:13800000199",',
            350: 'bank-a,ACC-000001,Twin,early,Asia/Shanghai,"debtor:13700000001",',
        },
    )
    result = import_debtors(sessions, data, Format.CSV, sealer, "CN", NOW)
    assert not result.ok and result.created == 0
    assert _count(sessions) == (0, 0)
    lines = list(csv.reader(io.StringIO(error_csv(result.errors))))
    assert lines[0] == ["line", "field", "message"]
    # row index 199 is on line 201 (the header is line 1)
    assert [(line, field) for line, field, _ in lines[1:]] == [
        ("201", "timezone"),
        ("352", "external_id"),
    ]
    assert "line 3" in lines[2][2]  # the account it repeats


def test_a_failure_while_writing_leaves_nothing(engine: Engine, sealer: Sealer) -> None:
    """A failure after some batches went out rolls back every batch already written."""
    sessions = session_factory(engine)

    class Breaking(Sealer):
        calls = 0

        def seal(self, debtor: DebtorIn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            Breaking.calls += 1
            if Breaking.calls == 150:
                raise RuntimeError("the disk filled up")
            return super().seal(debtor)

    broken = Breaking(sealer.keys, sealer.number_secret)
    with pytest.raises(RuntimeError, match="disk"):
        import_debtors(sessions, csv_file(200), Format.CSV, broken, "CN", NOW, batch_size=50)
    assert _count(sessions) == (0, 0)


@pytest.mark.parametrize(
    ("data", "fmt", "words"),
    [
        (b"\xff\xfe\x00bad", Format.CSV, "not UTF-8"),
        ("", Format.CSV, "empty"),
        ("client,external_id,name,stage,numbrs\n", Format.CSV, "unknown column"),
        ("client,external_id,name,stage\n", Format.CSV, "lacks column(s) numbers"),
        ("{not json", Format.JSON, "not JSON"),
        ('{"rows": []}', Format.JSON, "list of debtors"),
    ],
)
def test_unreadable_files_are_refused_whole(
    tmp_path: Path, sealer: Sealer, data: bytes | str, fmt: Format, words: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    result = import_debtors(session_factory(engine), data, fmt, sealer, "CN", NOW)
    assert [(e.line, e.field) for e in result.errors] == [(0, "file")]
    assert words in result.errors[0].message
    engine.dispose()


def test_row_level_shape_errors(tmp_path: Path, sealer: Sealer) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    sessions = session_factory(engine)
    result = import_debtors(sessions, '[1, {"client": "x"}]', Format.JSON, sealer, "CN", NOW)
    fields = [(e.line, e.field) for e in result.errors]
    assert fields[0] == (1, "row")
    assert (2, "external_id") in fields and (2, "numbers") in fields
    extra = HEADER + "\nbank-a,A,N,early,Asia/Shanghai,debtor:13800138000,,surplus\n"
    result = import_debtors(sessions, extra, Format.CSV, sealer, "CN", NOW)
    assert [(e.line, e.field) for e in result.errors] == [(2, "row")]
    engine.dispose()


@pytest.mark.slow
def test_fifty_thousand_accounts_in_one_import(tmp_path: Path, sealer: Sealer) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'big.db'}")
    from api.migrate import upgrade

    upgrade(engine)
    sessions = session_factory(engine)
    data = csv_file(50_000).encode()
    seen: list[tuple[str, int, int]] = []
    started = time.perf_counter()
    result = import_debtors(
        sessions, data, Format.CSV, sealer, "CN", NOW, lambda *a: seen.append(a)
    )
    took = time.perf_counter() - started
    assert (result.ok, result.created) == (True, 50_000)
    assert _count(sessions) == (50_000, 100_000)
    assert took < 60, f"50,000 accounts took {took:.1f} s"
    written = [done for phase, done, _ in seen if phase == "written"]
    assert written == sorted(written) and written[-1] == 50_000 and len(written) > 10
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM debtors WHERE stage='early'")).scalar()
    engine.dispose()


def test_cli_imports_and_writes_the_error_file(
    tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    good = tmp_path / "accounts.csv"
    good.write_text(csv_file(12), encoding="utf-8")
    done = dialguard(["debtors", "import", str(good)], dialguard_env)
    assert done.returncode == 0, done.stderr
    assert "validated 12/12 rows" in done.stdout and "written 12/12 rows" in done.stdout
    assert "12 debtor(s) imported: 12 new, 0 updated" in done.stdout
    assert "13800000003" not in done.stdout + done.stderr

    bad = tmp_path / "accounts.json"
    bad.write_text(json.dumps([{"client": "bank-a", "external_id": "X1", "name": "N"}]))
    errors = tmp_path / "out" / "errors.csv"
    errors.parent.mkdir()
    failed = dialguard(["debtors", "import", str(bad), "--errors", str(errors)], dialguard_env)
    assert failed.returncode == 1
    assert "nothing was imported" in failed.stderr and str(errors) in failed.stderr
    # with a BOM, so Excel opens Chinese messages readable
    assert errors.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(errors.open(encoding="utf-8-sig")))
    assert {(r["line"], r["field"]) for r in rows} == {("1", "stage"), ("1", "numbers")}

    again = dialguard(["debtors", "import", str(good), "--format", "csv"], dialguard_env)
    assert "0 new, 12 updated" in again.stdout
    engine = make_engine(f"sqlite:///{Path(dialguard_env['DIALGUARD_DATA_DIR']) / 'dialguard.db'}")
    with session_factory(engine)() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == ["debtor-import", "debtor-import-refused", "debtor-import"]
    engine.dispose()

"""Do-not-call lists: CSV rows checked one by one, scopes, and imports that land whole."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from dialer.dnc import DncRow, Scope, add_entries, listed, parse_csv, remove
from recording.db.engine import session_factory
from tests.helpers import dialguard

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "numbers", "errors"),
    [
        ("number,reason\n13800138000,asked\n", ["+8613800138000"], []),
        ("13800138000\n+86 139 0013 9000\n", ["+8613800138000", "+8613900139000"], []),
        ("号码\n008613800138000\n", ["+8613800138000"], []),  # 00 prefix, Chinese header
        ("13800138000\n13800138000\n", ["+8613800138000"], []),  # duplicates once
        ("\n\n13800138000\n,\n", ["+8613800138000"], []),  # blank lines skipped
        ("13800138000\nabc\n12\n", ["+8613800138000"], [2, 3]),  # line numbers of bad rows
        ("+12125550123,written request\n", ["+12125550123"], []),
    ],
)
def test_parse_csv(text: str, numbers: list[str], errors: list[int]) -> None:
    rows, bad = parse_csv(text, "CN")
    assert [r.e164 for r in rows] == numbers
    assert [e.line for e in bad] == errors
    assert all("not a" in e.message for e in bad)


def test_reason_is_kept_and_scope_needs_an_id() -> None:
    rows, _ = parse_csv("13800138000,written only\n", "CN", Scope.DEBTOR, "D-7")
    assert rows == [DncRow("+8613800138000", Scope.DEBTOR, "D-7", "written only")]
    with pytest.raises(ValueError, match="needs its id"):
        parse_csv("13800138000\n", "CN", Scope.CLIENT)


def _key(e164: str) -> str:
    return "k" + e164


def test_scopes(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session:
        rows = [
            DncRow("+8613800138000", Scope.GLOBAL, "", "asked"),
            DncRow("+8613900139000", Scope.CLIENT, "bank-a", "client's list"),
            DncRow("+8613700137000", Scope.DEBTOR, "D-1", "written only"),
        ]
        assert add_entries(session, rows, _key, "t.csv", "sup1", NOW) == (3, 0)
        assert add_entries(session, rows[:1], _key, "t.csv", "sup1", NOW) == (0, 1)
        session.commit()
        assert listed(session, _key("+8613800138000")) is not None
        assert listed(session, _key("+8613900139000")) is None
        assert listed(session, _key("+8613900139000"), client_id="bank-b") is None
        assert listed(session, _key("+8613900139000"), client_id="bank-a") is not None
        assert listed(session, _key("+8613700137000"), debtor_id="D-1") is not None
        assert listed(session, _key("+8613700137000"), debtor_id="D-2") is None
        assert remove(session, _key("+8613800138000"), Scope.GLOBAL)
        session.commit()
        assert listed(session, _key("+8613800138000")) is None
        assert not remove(session, _key("+8613800138000"), Scope.GLOBAL)


def test_cli_import_is_all_or_nothing(dialguard_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("number,reason\n13800138000,asked\nnot-a-number\n")
    refused = dialguard(["dnc", "import", str(bad)], dialguard_env)
    assert refused.returncode == 1
    assert "bad.csv: line 3: " in refused.stderr and "nothing was imported" in refused.stderr
    assert dialguard(["dnc", "check", "13800138000"], dialguard_env).returncode == 1

    good = tmp_path / "good.csv"
    good.write_text("number,reason\n13800138000,asked\n13900139000\n")
    done = dialguard(["dnc", "import", str(good), "--client", "bank-a"], dialguard_env)
    assert done.returncode == 0, done.stderr
    assert "2 number(s) added to the client list" in done.stdout
    on = dialguard(["dnc", "check", "13800138000", "--client", "bank-a"], dialguard_env)
    assert on.returncode == 0 and "+86138****8000 is on the client list: asked" in on.stdout
    assert dialguard(["dnc", "check", "13800138000"], dialguard_env).returncode == 1
    db = Path(dialguard_env["DIALGUARD_DATA_DIR"]) / "dialguard.db"
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT * FROM dnc_entries").fetchall()
        actions = [a for (a,) in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert len(stored) == 2 and "13800138000" not in repr(stored), "numbers are kept hashed"
    assert actions == ["dnc-import"]

"""Data files are their user's alone: 0600 files, 0700 directories, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from api.cli.supervisor import private_data_dir
from recording.db.engine import make_engine
from tests.helpers import dialguard

#: SeaweedFS writes its volumes' small info files 0644 whatever the umask; they hold
#: version and replication settings, no call data, and sit in DATA_DIR/s3 (0700).
THEIRS = ("s3/data/*.vif",)


def open_to_others(root: Path) -> list[str]:
    """Every path under `root` (itself included) that group or others may read or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or any(path.match(f"{root.name}/{p}") for p in THEIRS):
            continue
        if mode & 0o077 or (stat.S_ISDIR(mode) and stat.S_IMODE(mode) != 0o700):
            found.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(mode):o}")
    return found


def test_commands_create_private_files_under_a_loose_umask(
    dialguard_env: dict[str, str], tmp_path: Path
) -> None:
    previous = os.umask(0o022)  # what a login shell usually has; `dialguard` ignores it
    try:
        for args, stdin in (
            (["admin", "create-user", "agent1", "--role", "agent", "--password-stdin"], None),
            (["admin", "set-sip-password", "agent1", "--password-stdin"], None),
            (["dnc", "import", str(tmp_path / "dnc.csv")], None),
        ):
            (tmp_path / "dnc.csv").write_text("13800138000,asked\n")
            done = dialguard(args, dialguard_env, stdin=stdin or "softphone-secret-77\n")
            assert done.returncode == 0, done.stderr
    finally:
        os.umask(previous)
    data = Path(dialguard_env["DIALGUARD_DATA_DIR"])
    assert (data / "dialguard.db").exists() and (data / "keys" / "number-key").exists()
    assert open_to_others(data) == []


def test_an_older_install_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "dialguard.db"
    for name in ("dialguard.db", "dialguard.db-wal", "dialguard.db-shm"):
        (data / name).touch()
        (data / name).chmod(0o644)  # as versions before 0.x left them
    make_engine(f"sqlite:///{db}").dispose()
    private_data_dir(data)
    assert open_to_others(data) == []


def test_a_new_database_is_never_readable_by_others(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dialguard.db'}")
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x)")
        engine.dispose()
    finally:
        os.umask(previous)
    assert open_to_others(tmp_path / "new") == []

"""`dialguard doctor` and `up` on a broken installation: one line, the fix, no traceback."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from recording.embedded_s3 import EmbeddedS3
from tests.helpers import dialguard, free_port

NO_LOCK_BUCKET = "doctor-bucket-without-lock"


@pytest.fixture
def unlocked_bucket_env(seaweed: EmbeddedS3, s3_client: Minio) -> dict[str, str]:
    if not s3_client.bucket_exists(NO_LOCK_BUCKET):
        s3_client.make_bucket(NO_LOCK_BUCKET)
    assert seaweed.credentials is not None
    return {
        "DIALGUARD_S3_ENDPOINT": seaweed.endpoint,
        "DIALGUARD_S3_ACCESS_KEY": seaweed.credentials.access_key,
        "DIALGUARD_S3_SECRET_KEY": seaweed.credentials.secret_key,
        "DIALGUARD_S3_BUCKET": NO_LOCK_BUCKET,
    }


@pytest.fixture
def busy_sip_port(dialguard_env: dict[str, str]) -> Iterator[None]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", int(dialguard_env["DIALGUARD_SIP_PORT"])))
        yield


BROKEN = {
    "wrong database URL": (
        {"DIALGUARD_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/dg"},
        "cannot connect to postgresql+psycopg://postgres@127.0.0.1",
        "check DIALGUARD_DATABASE_URL",
    ),
    "garbage database URL": (
        {"DIALGUARD_DATABASE_URL": "this is not a url"},
        "DIALGUARD_DATABASE_URL is not a database URL",
        "postgresql+psycopg://",
    ),
    "unreachable S3": (
        {
            "DIALGUARD_S3_ENDPOINT": f"127.0.0.1:{free_port()}",
            "DIALGUARD_S3_ACCESS_KEY": "k",
            "DIALGUARD_S3_SECRET_KEY": "s",
        },
        "does not answer",
        "DIALGUARD_S3_ENDPOINT",
    ),
    "missing model": (
        {"DIALGUARD_WHISPER_MODEL": "large-v9"},
        "unknown Whisper model 'large-v9'",
        "set DIALGUARD_WHISPER_MODEL",
    ),
}


def _one_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dialguard: ")]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("case", list(BROKEN))
def test_doctor_names_the_problem_and_fails(case: str, dialguard_env: dict[str, str]) -> None:
    extra, problem, fix = BROKEN[case]
    result = dialguard(["doctor"], dialguard_env | extra)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    failing = [line for line in result.stdout.splitlines() if "  FAIL  " in line]
    assert len(failing) >= 1 and problem in failing[0] and fix in failing[0]


@pytest.mark.parametrize("case", list(BROKEN))
def test_up_refuses_to_start_with_one_line(case: str, dialguard_env: dict[str, str]) -> None:
    extra, problem, fix = BROKEN[case]
    result = dialguard(["up"], dialguard_env | extra)
    assert result.returncode == 1
    _one_line(result.stderr, problem, fix)


def test_s3_without_object_lock(
    dialguard_env: dict[str, str], unlocked_bucket_env: dict[str, str]
) -> None:
    env = dialguard_env | unlocked_bucket_env
    doctor = dialguard(["doctor"], env)
    assert doctor.returncode == 1
    assert f"bucket '{NO_LOCK_BUCKET}'" in doctor.stdout and "has no object lock" in doctor.stdout
    up = dialguard(["up"], env)
    assert up.returncode == 1
    _one_line(up.stderr, "has no object lock", "create a new bucket with object lock")


@pytest.mark.usefixtures("busy_sip_port")
def test_busy_sip_port(dialguard_env: dict[str, str]) -> None:
    port = dialguard_env["DIALGUARD_SIP_PORT"]
    doctor = dialguard(["doctor"], dialguard_env)
    assert doctor.returncode == 1
    assert f"SIP port 127.0.0.1:{port} (udp) is in use" in doctor.stdout
    up = dialguard(["up"], dialguard_env)
    assert up.returncode == 1
    _one_line(up.stderr, f"SIP port 127.0.0.1:{port} (udp) is in use", "DIALGUARD_SIP_PORT")


def test_healthy_installation_passes(dialguard_env: dict[str, str]) -> None:
    result = dialguard(["doctor"], dialguard_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    for check in ("ffmpeg", "whisper model", "database", "object storage", "SIP port", "API port"):
        assert check in result.stdout


def test_admin_creates_a_user_once(dialguard_env: dict[str, str]) -> None:
    args = ["admin", "create-user", "sup.wang", "--role", "supervisor", "--password-stdin"]
    first = dialguard(args, dialguard_env, stdin="a long passphrase\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "created supervisor sup.wang"
    again = dialguard(args, dialguard_env, stdin="a long passphrase\n")
    assert again.returncode == 1
    _one_line(again.stderr, "user 'sup.wang' already exists")
    weak = dialguard(
        ["admin", "create-user", "agent1", "--role", "agent", "--password-stdin"],
        dialguard_env,
        stdin="short\n",
    )
    assert weak.returncode == 1
    _one_line(weak.stderr, "password too short", "at least 12")


def test_tokens_and_audit_verify_from_the_command_line(dialguard_env: dict[str, str]) -> None:
    dialguard(
        ["admin", "create-user", "qa.li", "--role", "qa", "--password-stdin"],
        dialguard_env,
        stdin="a long passphrase\n",
    )
    issued = dialguard(["admin", "create-token", "qa.li", "--name", "search-script"], dialguard_env)
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.strip().startswith("dg_") and len(issued.stdout.strip()) > 40
    unknown = dialguard(["admin", "create-token", "nobody"], dialguard_env)
    assert unknown.returncode == 1
    _one_line(unknown.stderr, "no active user 'nobody'")
    intact = dialguard(["audit", "verify"], dialguard_env)
    assert intact.returncode == 0 and "audit log intact" in intact.stdout
    db = Path(dialguard_env["DIALGUARD_DATA_DIR"]) / "dialguard.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET target = 'someone-else' WHERE seq = 1")
    tampered = dialguard(["audit", "verify"], dialguard_env)
    assert tampered.returncode == 1
    assert "entry 1: was edited after it was written" in tampered.stdout


def test_sip_password_is_stored_as_digests_only(dialguard_env: dict[str, str]) -> None:
    dialguard(
        ["admin", "create-user", "agent.zhao", "--role", "agent", "--password-stdin"],
        dialguard_env,
        stdin="a long passphrase\n",
    )
    args = ["admin", "set-sip-password", "agent.zhao", "--password-stdin"]
    short = dialguard(args, dialguard_env, stdin="1234\n")
    assert short.returncode == 1
    _one_line(short.stderr, "at least 12 characters")
    done = dialguard(args, dialguard_env, stdin="softphone-secret-77\n")
    assert done.returncode == 0, done.stderr
    assert "realm dialguard" in done.stdout
    nobody = dialguard(
        ["admin", "set-sip-password", "nobody", "--password-stdin"],
        dialguard_env,
        stdin="softphone-secret-77\n",
    )
    assert nobody.returncode == 1
    db = Path(dialguard_env["DIALGUARD_DATA_DIR"]) / "dialguard.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT * FROM sip_accounts WHERE username = 'agent.zhao'").fetchone()
    assert row is not None and "softphone-secret-77" not in repr(row)
    expected = hashlib.md5(b"agent.zhao:dialguard:softphone-secret-77").hexdigest()
    assert expected in row

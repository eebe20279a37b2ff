"""`dialguard policy check` as a supervisor or auditor runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import dialguard


def _check(env: dict[str, str], *args: str) -> dict[str, Any]:
    """The JSON answer; the exit status is the decision too (0: allowed, 1: refused)."""
    result = dialguard(["policy", "check", *args, "--json"], env)
    assert result.returncode in (0, 1), result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    assert set(answer) == {"allowed", "rule", "reason", "next_allowed_at"}
    assert result.returncode == (0 if answer["allowed"] else 1)
    return answer


@pytest.mark.parametrize(
    ("args", "allowed", "rule", "next_at"),
    [
        (["--number", "13800138000", "--at", "2026-11-24T10:00:00+08:00"], True, "allowed", None),
        (
            ["--number", "13800138000", "--at", "2026-11-24T21:30:00+08:00"],
            False,
            "window",
            "2026-11-25T08:00:00+08:00",
        ),
        (
            [
                "--number",
                "+1 212 555 0100",
                "--at",
                "2026-11-24T12:30:00+00:00",
                "--preset",
                "us-regf",
            ],
            False,
            "window",
            "2026-11-24T08:00:00-05:00",
        ),  # 07:30 in New York
        (
            [
                "--number",
                "13800138000",
                "--at",
                "2026-02-17T10:00:00+08:00",
                "--preset",
                "cn-workdays",
            ],
            False,
            "holiday",
            "2026-02-24T09:00:00+08:00",
        ),
        (
            ["--number", "12345", "--at", "2026-11-24T10:00:00+08:00"],
            False,
            "malformed_number",
            None,
        ),
    ],
)
def test_decisions(
    dialguard_env: dict[str, str], args: list[str], allowed: bool, rule: str, next_at: str | None
) -> None:
    answer = _check(dialguard_env, *args)
    assert (answer["allowed"], answer["rule"], answer["next_allowed_at"]) == (
        allowed,
        rule,
        next_at,
    )
    assert "12345" not in answer["reason"] and "13800138000" not in answer["reason"]


def test_history_counts_toward_the_daily_cap(dialguard_env: dict[str, str], tmp_path: Path) -> None:
    history = tmp_path / "history.json"
    history.write_text(
        json.dumps(
            [
                {"at": "2026-11-24T09:00:00+08:00", "connected": False},
                {"at": "2026-11-24T11:00:00+08:00", "connected": False},
                {"at": "2026-11-24T14:00:00+08:00", "connected": True},
            ]
        )
    )
    answer = _check(
        dialguard_env,
        "--number",
        "13800138000",
        "--at",
        "2026-11-24T16:00:00+08:00",
        "--debtor",
        "D-1",
        "--history",
        str(history),
    )
    assert (answer["allowed"], answer["rule"]) == (False, "daily_cap")
    assert answer["next_allowed_at"] == "2026-11-25T08:00:00+08:00"


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not usable"), ('[{"at": "2026-11-24T09:00:00"}]', "needs a UTC offset")],
)
def test_bad_history_is_one_line(
    dialguard_env: dict[str, str], tmp_path: Path, content: str, message: str
) -> None:
    history = tmp_path / "history.json"
    history.write_text(content)
    result = dialguard(
        [
            "policy",
            "check",
            "--number",
            "13800138000",
            "--at",
            "2026-11-24T16:00:00+08:00",
            "--history",
            str(history),
        ],
        dialguard_env,
    )
    assert result.returncode == 2  # no decision: neither allowed (0) nor refused (1)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_preset_names_the_valid_ones(dialguard_env: dict[str, str]) -> None:
    result = dialguard(
        [
            "policy",
            "check",
            "--number",
            "13800138000",
            "--at",
            "2026-11-24T16:00:00+08:00",
            "--preset",
            "lenient",
        ],
        dialguard_env,
    )
    assert result.returncode == 2
    assert "cn-default" in result.stderr and "us-regf" in result.stderr


def test_a_refusal_exits_1_with_its_sentence(dialguard_env: dict[str, str]) -> None:
    """Scripts branch on the exit status: 0 allowed, 1 refused (the sentence says why)."""
    late = ["policy", "check", "--number", "13800138000", "--at", "2026-11-24T21:30:00+08:00"]
    refused = dialguard(late, dialguard_env)
    assert refused.returncode == 1, refused.stderr
    assert "Next allowed: 2026-11-25 08:00 (Asia/Shanghai)." in refused.stdout
    allowed = dialguard([*late[:-1], "2026-11-24T10:00:00+08:00"], dialguard_env)
    assert allowed.returncode == 0 and allowed.stdout.startswith("Allowed")

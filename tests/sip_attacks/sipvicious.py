"""SIPVicious (Debian's 0.3.3: svmap, svwar, svcrack) run against a listener, bounded.

The tools an attacker actually points at a SIP server, run the way the issue
describes them: they must find no account and no password. Every run is
bounded (a wall-clock limit, SIPVicious's own --maximumtime), aimed at
127.0.0.1 only and bound to 127.0.0.1, with small deterministic wordlists
(about 200 guesses) that hold the real agent's name but never the real
password. What each tool reported is parsed from its result table and its
verbose log, so a partial run that had to be stopped still tells what it found.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port

TOOLS = ("svmap", "svwar", "svcrack")
_ROW = re.compile(r"^\|\s*(.+?)\s*\|\s*(.*?)\s*\|$")
_HEADERS = {"SIP Device", "Extension", "Password"}
_CRACKED = re.compile(r"The password for (\S+) is (.*)$")


def available() -> str | None:
    """None when every tool is installed, else why not (for a skip)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return (
        f"SIPVicious not installed ({', '.join(missing)}): apt-get install sipvicious"
        if (missing)
        else None
    )


@dataclass
class ToolRun:
    tool: str
    args: list[str]
    output: str
    timed_out: bool
    found: list[tuple[str, str]] = field(default_factory=list)  # the result table's rows


def _run(tool: str, args: Sequence[str], limit_s: float, cwd: Path) -> ToolRun:
    if not args or args[-1] != "127.0.0.1":
        raise ValueError("SIPVicious is only ever aimed at 127.0.0.1 here")
    command = [tool, *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd
    )
    try:
        output, _ = proc.communicate(timeout=limit_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        timed_out = True
    found = []
    for line in output.splitlines():
        row = _ROW.match(line.strip())
        if row and row.group(1) not in _HEADERS:
            found.append((row.group(1), row.group(2)))
        cracked = _CRACKED.search(line)
        if cracked and (cracked.group(1), cracked.group(2)) not in found:
            found.append((cracked.group(1), cracked.group(2)))
    return ToolRun(tool, list(args), output, timed_out, found)


def _common(port: int) -> list[str]:
    """Bound to loopback, from a free local port (they default to 5060, maybe taken)."""
    return ["-b", "127.0.0.1", "-P", str(free_port()), "-p", str(port)]


def usernames(real: str) -> list[str]:
    """About 200 account names a scanner tries: extensions, roles, and the real agent's."""
    roles = ["admin", "root", "test", "guest", "operator", "support", "sip", "user", "voip",
             "asterisk", "agent", "manager", "demo", "info", "sales", "office", "reception",
             "dialguard", "collector", "supervisor"]  # fmt: skip
    names = [*roles, *(str(n) for n in range(100, 150)), *(str(n) for n in range(1000, 1050))]
    names += [f"agent{n}" for n in range(2, 80)]
    return [real, *names]


def passwords(real: str) -> list[str]:
    """About 200 guesses; the real password is never among them (asserted)."""
    common = ["password", "123456", "12345678", "1234", "0000", "1111", "secret", "admin",
              "letmein", "qwerty", "abc123", "dialguard", "Dialguard1", "welcome", "changeme",
              "sip", "voip", "asterisk", "agent", "agent1", "passw0rd", "P@ssw0rd", "iloveyou",
              "monkey", "dragon", "111111", "000000", "654321", "123123", "pass"]  # fmt: skip
    guesses = [*common, *(f"{w}{n}" for w in ("agent1", "pass", "sip") for n in range(57))]
    assert real not in guesses
    return guesses


def svmap(port: int, cwd: Path, limit_s: float = 20) -> ToolRun:
    """Scan 127.0.0.1:port for SIP devices (OPTIONS); found: (device, user agent)."""
    return _run("svmap", [*_common(port), "127.0.0.1"], limit_s, cwd)


def svwar(
    port: int, names: Sequence[str], cwd: Path, method: str = "REGISTER", limit_s: float = 30
) -> ToolRun:
    """Guess account names; found: (extension, how it answered). --force: scan on even when
    unknown and known names get the same challenge (which is the point)."""
    words = cwd / "svwar-names.txt"
    words.write_text("\n".join(names) + "\n")
    args = [*_common(port), "--force", "-m", method, "-d", str(words), "--maximumtime", "5"]
    return _run("svwar", [*args, "127.0.0.1"], limit_s, cwd)


def svcrack(
    port: int,
    username: str,
    guesses: Sequence[str],
    cwd: Path,
    method: str = "REGISTER",
    limit_s: float = 30,
) -> ToolRun:
    """Guess `username`'s password; found: (user, password) it reported cracked."""
    words = cwd / "svcrack-passwords.txt"
    words.write_text("\n".join(guesses) + "\n")
    args = [*_common(port), "-v", "-u", username, "-m", method, "-d", str(words)]
    return _run("svcrack", [*args, "--maximumtime", "5", "127.0.0.1"], limit_s, cwd)

"""Helpers for tests: free ports, the dialguard command, SIPp scenarios, spoken audio."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import IO

DATA = Path(__file__).parent / "data"
DIALGUARD = Path(sys.executable).parent / "dialguard"


def sip_message(name: str, **fields: str) -> str:
    """A SIP message from tests/data/sip, with its line ends as written (CRLF, or LF on purpose).

    A template (``.tmpl``) has ``$name`` placeholders (string.Template) for
    what a test decides at run time: branches, Call-IDs, a digest answer.
    ``fields`` fill them, and a placeholder left unfilled is an error.
    Files are read as bytes: reading them as text would turn CRLF into LF.
    """
    text = sip_bytes(name).decode("utf-8")
    return Template(text).substitute(fields) if name.endswith(".tmpl") else text


def sip_bytes(name: str) -> bytes:
    """A datagram from tests/data/sip exactly as stored: messages, broken ones and noise."""
    return (DATA / "sip" / name).read_bytes()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP wants both)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def dialguard(
    args: list[str], env: dict[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DIALGUARD), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_sipp(
    scenario: str, target: str, *extra: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a SIPp scenario from tests/data/sipp against host:port; returns SIPp's result.

    SIPp exits 0 when every call of the scenario succeeded, 1 when one failed.
    """
    local = free_port(socket.SOCK_DGRAM)
    return subprocess.run(
        [
            "sipp",
            target,
            "-sf",
            str(DATA / "sipp" / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(local),
            "-m",
            "1",
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            os.devnull,
            "-nostdin",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )


def sipp_server(
    scenario: str | Path, port: int, *extra: str, stdout: IO[str] | int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """Start SIPp serving a scenario on 127.0.0.1:`port` (a carrier, a phone), in the background.

    `scenario` is a file name in tests/data/sipp, or the Path of one a test wrote. Its media
    get a free port of their own, so several servers never share one. `extra` are further
    SIPp options (call count, timeouts, logs); `stdout` is where its output goes (a pipe to
    read at the end, or a log file to keep). It returns at once: callers that dial it wait
    for the bind themselves, each with its own patience.
    """
    path = scenario if isinstance(scenario, Path) else DATA / "sipp" / scenario
    return subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(path),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-nostdin",
            *extra,
        ],
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


def espeak_wav(text: str, path: Path, rate: int = 8000, voice: str = "en-us") -> Path:
    """Speech as a telephone would carry it: espeak-ng, resampled to mono `rate` Hz."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ar",
            str(rate),
            "-ac",
            "1",
            str(path),
        ],
        check=True,
    )
    raw.unlink()
    return path

"""The built-in test carrier in its own process, called by SIPp as a dialer worker would."""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dialer.carrier_line import LINES, CarrierLineUnavailable, ensure_lines, line_path
from dialer.sip.builtin_carrier import wav_seconds
from dialer.sip.probe import wait_answering
from tests.helpers import free_port, run_sipp

PCAP = Path("/usr/share/sip-tester/g711a.pcap")

pytestmark = pytest.mark.skipif(not PCAP.exists(), reason="sip-tester's sample pcap is missing")


def _serve(port: int, line: Path) -> None:
    from dialer.sip.builtin_carrier import run_builtin_carrier

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as `dialguard up` stops a child
    run_builtin_carrier(port, line, stop, ring_s=0.5, linger_s=0.5)


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ensure_lines(tmp_path_factory.mktemp("carrier"))


@pytest.fixture
def carrier(lines: dict[str, Path]) -> Iterator[tuple[int, Path]]:
    port = free_port(socket.SOCK_DGRAM)
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, lines["en"]), daemon=True
    )
    process.start()
    try:
        wait_answering("127.0.0.1", port, process)
        yield port, lines["en"]
    finally:
        process.terminate()
        process.join(10)
        assert process.exitcode == 0, "the carrier did not stop cleanly on SIGTERM"


def test_lines_are_made_once_in_both_languages(lines: dict[str, Path]) -> None:
    assert set(lines) == set(LINES) == {"en", "zh"}
    for language, path in lines.items():
        assert path == line_path(path.parent, language)
        assert 3.0 < wav_seconds(path) < 15.0  # a short line, not a speech
    made = {p: p.stat().st_mtime_ns for p in lines.values()}
    assert ensure_lines(next(iter(lines.values())).parent) == lines
    assert {p: p.stat().st_mtime_ns for p in lines.values()} == made  # kept, not remade


def test_it_answers_says_its_line_and_hangs_up(carrier: tuple[int, Path]) -> None:
    port, line = carrier
    started = time.monotonic()
    call = run_sipp(
        "test_carrier_call.xml",
        f"127.0.0.1:{port}",
        "-s",
        "+8613800138000",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        timeout=40,
    )
    took = time.monotonic() - started
    assert call.returncode == 0, call.stdout[-3000:] + call.stderr[-2000:]
    # 0.5 s of ringing, the line, 0.5 s more, then its BYE
    assert wav_seconds(line) < took < wav_seconds(line) + 8.0, took


def test_it_carries_calls_side_by_side(carrier: tuple[int, Path]) -> None:
    port, _ = carrier

    def call(_: int) -> int:
        return run_sipp(
            "test_carrier_call.xml",
            f"127.0.0.1:{port}",
            "-s",
            "+8613800138000",
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            timeout=40,
        ).returncode

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(call, range(3))) == [0, 0, 0]


def test_no_espeak_is_one_line_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "ffmpeg").symlink_to("/usr/bin/ffmpeg")
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(CarrierLineUnavailable, match="espeak-ng is not installed") as refused:
        ensure_lines(tmp_path / "lines")
    assert "DIALGUARD_TEST_CARRIER=off" in refused.value.hint
    assert list((tmp_path / "lines").iterdir()) == []  # nothing half made

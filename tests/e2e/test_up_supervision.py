"""`dialguard up` looks after the embedded S3 like every other child.

Killed, it is started again; frozen (SIGSTOP), it is killed after 10 s
without an answer and started again; each time with a log line that counts
the restarts, and recordings flow again without anyone restarting the
product. And when the supervisor itself is killed with SIGKILL, nothing it
started lives on: not a child, not `weed`, not even a `weed` that was frozen
at that moment.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from recording.db.engine import make_engine, session_factory
from recording.db.heartbeats import Heartbeat
from tests.audio import noise, write_wav
from tests.e2e.test_up import GREEN_WITHIN, Running
from tests.helpers import dialguard

pytestmark = pytest.mark.slow


@pytest.fixture
def product(dialguard_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    env = dialguard_env | {
        "DIALGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'dialguard.db'}",
        "DIALGUARD_LOG_LEVEL": "INFO",
    }
    running = Running(env, tmp_path / "up.log")
    yield running
    running.close()
    for process in _ours(Path(env["DIALGUARD_DATA_DIR"])):  # never leave one behind
        process.kill()


def _ours(data: Path) -> list[psutil.Process]:
    """Every live process whose command line names this product's data directory."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(data) in part for part in process.info["cmdline"] or []):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def _weed(running: Running) -> psutil.Process:
    weeds = [p for p in running.tree() if p.name() == "weed"]
    assert len(weeds) == 1, weeds
    return weeds[0]


def _until(what: str, check: Callable[[], bool], limit: float, running: Running) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, (
            f"{what}: not within {limit:.0f} s\n{running.log.read_text()[-3000:]}"
        )
        time.sleep(0.5)
    return time.monotonic() - start


def _restarted(running: Running, old: int) -> bool:
    try:
        return _weed(running).pid != old
    except AssertionError:
        return False  # between the old one's death and the new one's start


def _log_lines(running: Running, message: str) -> list[dict[str, object]]:
    lines = []
    for raw in running.log.read_text().splitlines():
        if raw.startswith("{") and message in raw:
            lines.append(json.loads(raw))
    return lines


def test_embedded_s3_is_restarted_when_it_dies_or_hangs_and_dies_with_the_supervisor(
    product: Running, tmp_path: Path
) -> None:
    product.wait_green(GREEN_WITHIN)
    data = Path(product.env["DIALGUARD_DATA_DIR"])

    killed = _weed(product)
    killed.kill()
    took = _until(
        "a killed S3 is started again", lambda: _restarted(product, killed.pid), 30, product
    )
    exited = _log_lines(product, "embedded S3 exited; restarting")
    assert exited and exited[0]["restarts"] == 1, exited
    product.wait_green(90)
    print(f"killed S3 back after {took:.1f} s")

    # Recordings flow again, through the restarted store, without restarting the product.
    capture = write_wav(tmp_path / "c.wav", [noise(3.0, 0.2), noise(3.0, 0.2, seed=2)])
    stored = dialguard(
        ["recording", "store", str(capture), "--call-id", "after-restart"], product.env
    )
    assert re.match(r"[0-9a-f]{32} stored in both copies", stored.stdout), stored.stdout

    frozen = _weed(product)
    frozen.suspend()
    took = _until(
        "a frozen S3 is killed and started again",
        lambda: _restarted(product, frozen.pid),
        45,
        product,
    )
    hung = _log_lines(product, "embedded S3 has not answered for")
    assert hung and hung[0]["restarts"] == 2, hung
    assert not psutil.pid_exists(frozen.pid) or frozen.status() == psutil.STATUS_ZOMBIE
    product.wait_green(90)
    print(f"frozen S3 replaced after {took:.1f} s")

    # A worker that hangs (frozen here) stops beating: killed and started again as well.
    engine = make_engine(product.env["DIALGUARD_DATABASE_URL"])

    def uploaders() -> set[int]:
        with session_factory(engine)() as session:
            beats = select(Heartbeat.pid).where(Heartbeat.component == "uploader")
            return set(session.scalars(beats))

    (hanging,) = uploaders() & {p.pid for p in product.tree()}
    psutil.Process(hanging).suspend()
    took = _until(
        "a hung uploader is replaced",
        lambda: bool(uploaders() - {hanging} & {p.pid for p in product.tree()}),
        45,
        product,
    )
    stopped = _log_lines(product, "child stopped answering")
    assert stopped and stopped[0]["child"] == "uploader", stopped
    engine.dispose()
    product.wait_green(90)
    print(f"hung uploader replaced after {took:.1f} s")

    # The API writes no heartbeat: it is asked over HTTP instead, and a frozen one is replaced.
    port = int(product.env["DIALGUARD_API_PORT"])

    def serving() -> set[int]:
        found = set()
        for process in product.tree():
            with contextlib.suppress(psutil.Error):
                sockets = process.net_connections("tcp")
                if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
                    found.add(process.pid)
        return found

    (api,) = serving()
    psutil.Process(api).suspend()
    took = _until("a hung API is replaced", lambda: bool(serving() - {api}), 60, product)
    stopped = _log_lines(product, "child stopped answering")
    assert [line["child"] for line in stopped] == ["uploader", "api"], stopped
    product.wait_green(90)
    print(f"hung API replaced after {took:.1f} s")

    # The worst moment to lose the supervisor: its store frozen, so a SIGTERM would wait.
    tree = product.tree()
    _weed(product).suspend()
    product.process.kill()
    product.process.wait()
    _, alive = psutil.wait_procs(tree, timeout=45)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [(p.pid, p.name(), p.cmdline()[:3]) for p in left]
    assert _ours(data) == [], "a process of this product outlived its supervisor"

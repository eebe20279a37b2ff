"""SeaweedFS never outlives the process that started it, however that process ends.

Once a `weed` ran on for over an hour after its Dialguard was gone, holding
its ports and a deleted data directory: it had been frozen when Dialguard
was killed, and a SIGTERM waits for a frozen process to run again. Here the
starter is a real Python process that ends in each way a process ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from recording.embedded_s3 import EmbeddedS3

ROOT = Path(__file__).resolve().parents[2]

_STARTER = """
import sys, time
from pathlib import Path
from recording.embedded_s3 import EmbeddedS3
s3 = EmbeddedS3(Path(sys.argv[1])).start()
print(s3.pid, flush=True)
if sys.argv[2] == "raise":
    raise RuntimeError("something went wrong after the store started")
if sys.argv[2] == "exit":
    import os; os._exit(3)  # no cleanup at all, as a crash
time.sleep(600)
"""


def _gone(pid: int, timeout: float) -> bool:
    try:
        process = psutil.Process(pid)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return process.status() == psutil.STATUS_ZOMBIE
    return True


@pytest.mark.parametrize("ending", ["sigkill-while-frozen", "raise", "exit"])
def test_weed_dies_with_its_starter(tmp_path: Path, ending: str) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(tmp_path / "s3"), ending],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert starter.stdout is not None
        weed = int(starter.stdout.readline())
        assert psutil.Process(weed).name() == "weed"
        if ending == "sigkill-while-frozen":
            os.kill(weed, signal.SIGSTOP)
            starter.kill()
        starter.wait(30)
        assert _gone(weed, 10), f"weed {weed} outlived its starter ({ending})"
    finally:
        if starter.poll() is None:
            starter.kill()


def test_a_restart_comes_back_on_the_same_endpoint_with_the_data(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path / "s3") as s3:
        first, endpoint = s3.pid, s3.endpoint
        assert first is not None
        os.kill(first, signal.SIGSTOP)
        assert not s3.answers(timeout=1.0)  # frozen: alive, but no answer
        assert s3.alive()
        s3.restart()
        assert s3.pid != first and s3.endpoint == endpoint
        assert s3.answers() and s3.ready()
